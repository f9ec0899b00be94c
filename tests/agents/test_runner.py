"""The batched runner: determinism, batch-size independence, resume after a crash, run-folder checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fairgym.agents import make_agent
from fairgym.agents.runner import run_episodes
from fairgym.analysis.metrics import compute_metrics
from fairgym.envs import make_env, records
from fairgym.envs.lending import DELAYED_IMPACT_KWARGS
from fairgym.runfiles import EPISODES_FILE, RUN_STATS_FILE

LENDING = "fairgym/Lending-v0"
KW = {"max_steps": 6}


class CrashingAgent:
    """Wraps an agent and raises on its ``crash_at``-th ``act`` call (a simulated crash mid-run)."""

    def __init__(self, inner, crash_at: int):
        self.inner, self.crash_at, self.calls = inner, crash_at, 0
        self.name, self.stats = inner.name, inner.stats

    @property
    def last_details(self):
        return self.inner.last_details

    def calibrate(self, env):
        self.inner.calibrate(env)

    def reset(self, seed=None):
        self.inner.reset(seed)

    def act(self, observations, infos, decision_keys=None):
        self.calls += 1
        if self.calls == self.crash_at:
            raise KeyboardInterrupt("simulated crash")
        return self.inner.act(observations, infos, decision_keys=decision_keys)


def run(agent_name="random", **kwargs):
    defaults = {"episodes": 10, "seed": 7, "env_kwargs": KW, "num_envs": 4, "progress": False}
    return run_episodes(LENDING, make_agent(agent_name), **{**defaults, **kwargs})


def test_same_seed_same_records_and_different_seed_differs():
    assert run() == run()
    assert run() != run(seed=8)


def test_records_do_not_depend_on_batch_size():
    assert run(num_envs=1) == run(num_envs=4) == run(num_envs=16)


def test_records_are_seeded_and_indexed():
    episodes = run()
    assert [e["index"] for e in episodes] == list(range(10))
    assert [e["seed"] for e in episodes] == [7 + i for i in range(10)]
    assert all(e["length"] == 6 and e["agent"] == "random" for e in episodes)


def test_writes_episodes_and_run_stats(tmp_path):
    episodes = run(out_dir=tmp_path)
    assert records.read_episodes(tmp_path / EPISODES_FILE) == episodes
    stats = json.loads((tmp_path / RUN_STATS_FILE).read_text())
    assert stats["episodes_run"] == 10 and stats["steps_run"] == 60 == stats["agent"]["decisions"]


def test_resume_after_crash_and_torn_line_matches_uninterrupted_run(tmp_path):
    crashing = CrashingAgent(make_agent("random"), crash_at=14)  # 6 steps per episode, 4 live: some finished
    with pytest.raises(KeyboardInterrupt):
        run_episodes(LENDING, crashing, episodes=10, seed=7, out_dir=tmp_path, env_kwargs=KW, num_envs=4,
                     progress=False)
    path = tmp_path / EPISODES_FILE
    finished = len(records.read_episodes(path))
    assert 0 < finished < 10
    with open(path, "a") as fh:
        fh.write('{"env_id": "fairgym/Lend')  # a torn write
    resumed = run(out_dir=tmp_path)
    lines = path.read_text().splitlines()
    assert len(lines) == 10 and sorted(json.loads(x)["index"] for x in lines) == list(range(10))
    assert resumed == records.read_episodes(path) == run()
    assert json.loads((tmp_path / RUN_STATS_FILE).read_text())["episodes_run"] == 10 - finished


def test_rerun_of_a_finished_run_adds_nothing(tmp_path):
    first = run(out_dir=tmp_path)
    before = (tmp_path / EPISODES_FILE).read_text()
    assert run(out_dir=tmp_path) == first
    assert (tmp_path / EPISODES_FILE).read_text() == before


def test_resume_refuses_another_runs_folder(tmp_path):
    run(out_dir=tmp_path, episodes=2)
    before = (tmp_path / EPISODES_FILE).read_text()
    with pytest.raises(ValueError, match="agent='random'.*agent='constant'"):
        run("constant", out_dir=tmp_path)
    with pytest.raises(ValueError, match="seed"):
        run(out_dir=tmp_path, seed=99)
    assert (tmp_path / EPISODES_FILE).read_text() == before


def test_one_agent_call_per_step_for_all_live_envs():
    agent = make_agent("random")
    run_episodes(LENDING, agent, episodes=8, env_kwargs=KW, num_envs=8, progress=False)
    assert agent.stats.calls == 6 and agent.stats.decisions == 48


def test_agent_returning_wrong_count_is_an_error():
    agent = make_agent("random")
    agent.act = lambda observations, infos: ["approve"]
    with pytest.raises(RuntimeError, match="1 actions for 2 observations"):
        run_episodes(LENDING, agent, episodes=2, num_envs=2, progress=False)


@pytest.mark.parametrize(("kwargs", "field"), [({"episodes": -1}, "episodes"), ({"num_envs": 0}, "num_envs"),
                                               ({"seed": 1.5}, "seed")])
def test_bad_arguments(kwargs, field):
    with pytest.raises(ValueError, match=field):
        run(**kwargs)


def test_zero_episodes_returns_nothing(tmp_path):
    assert run(episodes=0, out_dir=tmp_path) == []


def test_first_random_decision_is_not_a_function_of_the_observation():
    """Episodes that open on the same text (same group and score) must still draw their own decisions."""
    episodes = run(episodes=80, env_kwargs={"max_steps": 1}, num_envs=8)
    actions: dict[str, set[str]] = {}
    for episode in episodes:
        first = episode["steps"][0]
        actions.setdefault(first["observation"], set()).add(first["action_text"])
    assert any(len(seen) == 2 for seen in actions.values()), actions


def test_eo_boundary_draws_differ_across_episodes_with_the_same_text():
    episodes = run("eo-threshold", episodes=120, env_kwargs={"max_steps": 1}, num_envs=8)
    boundary: dict[str, set[str]] = {}
    for episode in episodes:
        first = episode["steps"][0]
        if 0 < first["agent"]["approve_probability"] < 1:
            boundary.setdefault(first["observation"], set()).add(first["action_text"])
    assert boundary and any(len(seen) == 2 for seen in boundary.values()), boundary


@pytest.mark.parametrize("name", ["eo-threshold", "max-utility"])
def test_recalibrating_agents_do_not_depend_on_batch_size(name):
    kw = {**DELAYED_IMPACT_KWARGS, "max_steps": 40}
    assert run(name, env_kwargs=kw, num_envs=1) == run(name, env_kwargs=kw, num_envs=3) == run(name, env_kwargs=kw)


@pytest.mark.parametrize("name", ["random", "eo-threshold"])
def test_resume_matches_an_uninterrupted_run_for_seeded_agents(tmp_path, name):
    kw = {**DELAYED_IMPACT_KWARGS, "max_steps": 6}
    crashing = CrashingAgent(make_agent(name), crash_at=9)
    with pytest.raises(KeyboardInterrupt):
        run_episodes(LENDING, crashing, episodes=10, seed=7, out_dir=tmp_path, env_kwargs=kw, num_envs=3,
                     progress=False)
    assert 0 < len(records.read_episodes(tmp_path / EPISODES_FILE)) < 10
    assert run(name, out_dir=tmp_path, env_kwargs=kw) == run(name, env_kwargs=kw)


def test_agents_without_decision_keys_still_run():
    class OldAgent:
        name, last_details = "old", []

        def __init__(self):
            self.stats = make_agent("random").stats

        def reset(self, seed=None):
            pass

        def act(self, observations, infos):
            return ["deny"] * len(observations)

    episodes = run_episodes(LENDING, OldAgent(), episodes=3, env_kwargs=KW, progress=False)
    assert [s["action_text"] for e in episodes for s in e["steps"]] == ["deny"] * 18
    agent = make_agent("random")
    _, obs, infos = zip(*[(None, *make_env(LENDING).reset(seed=i)) for i in range(4)], strict=True)
    assert agent.act(list(obs), list(infos)) == make_agent("random").act(list(obs), list(infos))


def test_returns_exactly_the_requested_episodes(tmp_path):
    run(out_dir=tmp_path, episodes=6)
    fewer = run(out_dir=tmp_path, episodes=3)
    assert [e["index"] for e in fewer] == [0, 1, 2]
    assert compute_metrics(fewer)["task/episodes"] == 3
    assert len(records.read_episodes(tmp_path / EPISODES_FILE)) == 6  # the folder keeps what it holds


def test_records_hold_the_state_at_reset_and_drift_is_measured_from_it():
    episodes = run("max-utility", episodes=4)
    for episode in episodes:
        env = make_env(LENDING, **KW).unwrapped
        env.reset(seed=episode["seed"])
        assert episode[records.START] == env.start_state()
    metrics = compute_metrics(episodes)
    for group in episodes[0]["groups"]:
        drift = np.mean([e["steps"][-1]["outcome"]["group_mean_score"][group]
                         - e[records.START]["group_mean_score"][group] for e in episodes])
        assert metrics[f"fairness/credit_drift/{group}"] == pytest.approx(drift)


def test_compact_records_drop_the_observation_text():
    episodes = run(episodes=2, record_observations=False)
    assert all(s["observation"] is None for e in episodes for s in e["steps"])
    assert [s["action_text"] for e in episodes for s in e["steps"]] == \
        [s["action_text"] for e in run(episodes=2) for s in e["steps"]]
