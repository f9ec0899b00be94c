"""fairgym's runner and agents drive a served env exactly as a local one: the same records and metrics."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fairgym.agents import make_agent
from fairgym.agents.llm import LLMAgent
from fairgym.agents.runner import run_episodes
from fairgym.analysis.metrics import compute_metrics
from fairgym.envs import env_traits, records
from fairgym.serve.remote import make_remote_env


def as_json(episodes: list[dict]) -> list[dict]:
    return [json.loads(records.dumps(e)) for e in episodes]


def both(url: str, env_id: str, agent_name: str, **kwargs) -> tuple[list[dict], list[dict]]:
    """The same run in process and on the server (fresh agents of the same name)."""
    local = run_episodes(env_id, make_agent(agent_name), progress=False, **kwargs)
    remote = run_episodes(env_id, make_agent(agent_name), progress=False, env_url=url, **kwargs)
    return local, remote


@pytest.mark.parametrize("env_id,agent_name", [
    ("fairgym/Lending-v0", "eo-threshold"),  # calibrates from the env's parameters and follows each episode
    ("fairgym/Lending-v0", "fair-oracle"),
    ("fairgym/Allocation-v0", "constant"),  # reads the env's default action
    ("fairgym/Allocation-v0", "fair-oracle"),
    ("fairgym/Dialogue-v1", "polite"),
])
def test_scripted_agents_give_the_same_records_and_metrics(served, env_id, agent_name):
    local, remote = both(served, env_id, agent_name, episodes=5, seed=3, num_envs=3,
                         env_kwargs={"max_steps": 6})
    assert as_json(remote) == as_json(local)
    assert json.dumps(compute_metrics(remote), sort_keys=True) == json.dumps(compute_metrics(local), sort_keys=True)
    assert any(step["action_valid"] for episode in remote for step in episode["steps"])


def test_the_remote_env_declares_what_the_local_one_does(served):
    env = make_remote_env(served, "fairgym/Lending-v0", max_steps=4)
    assert env_traits(env) == env_traits("fairgym/Lending-v0")
    with pytest.raises(ValueError, match="does not apply to RemoteLendingEnv"):
        make_agent("polite").calibrate(env)
    with pytest.raises(TypeError, match="unknown argument"):
        make_remote_env(served, "fairgym/Lending-v0", max_step=4)
    with pytest.raises(ValueError, match="Did you mean 'fairgym/Lending-v0'"):
        make_remote_env(served, "fairgym/Lendng-v0")


@pytest.mark.parametrize("env_id,decide", [("fairgym/Lending-v0", "choice"), ("fairgym/Dialogue-v1", "generate")])
def test_the_llm_agent_gives_the_same_records(served, model, tok, env_id, decide):
    def agent():
        return LLMAgent.from_model(model, tok, decide=decide, temperature=1.0, max_new_tokens=6, seed=1)

    kwargs = {"episodes": 3, "seed": 0, "num_envs": 2, "env_kwargs": {"max_steps": 3}, "progress": False}
    local = run_episodes(env_id, agent(), **kwargs)
    remote = run_episodes(env_id, agent(), env_url=served, **kwargs)
    assert as_json(remote) == as_json(local)


@pytest.mark.slow
def test_fairgym_run_with_env_url_writes_the_local_runs_files(served, tmp_path):
    def run(out, *extra):
        command = [sys.executable, "-m", "fairgym", "run", "--env", "fairgym/Lending-v0", "--agent", "max-utility",
                   "--episodes", "4", "--env-opt", "max_steps=5", "--no-wandb", "--out", str(out), *extra]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return json.loads((out / "metrics.json").read_text())

    assert run(tmp_path / "remote", "--env-url", served) == run(tmp_path / "local")
    local = records.read_episodes(tmp_path / "local" / "episodes.jsonl")
    assert records.read_episodes(tmp_path / "remote" / "episodes.jsonl") == local
    done = subprocess.run([sys.executable, "-m", "fairgym", "run", "--env", "fairgym/Lending-v0", "--no-wandb",
                           "--env-url", "http://127.0.0.1:9", "--out", str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "no fairgym env server answers at http://127.0.0.1:9" in done.stderr


def test_the_openenv_client_speaks_to_the_server(served):
    from fairgym.envs import make_env
    from fairgym.serve.client import FairgymEnvClient
    from fairgym.serve.models import TextAction

    local = make_env("fairgym/Allocation-v0", max_steps=3)
    with FairgymEnvClient(base_url=served).sync() as client:
        first = client.reset(seed=4, env_id="fairgym/Allocation-v0", env_kwargs={"max_steps": 3})
        assert (first.observation.text, first.observation.info) == local.reset(seed=4)
        assert first.observation.env.family == "Allocation" and first.observation.env.parameters["budget"] == 6
        result = client.step(TextAction(text="North=6"))
        observation, reward, terminated, truncated, info = local.step("North=6")
        assert (result.observation.text, result.reward, result.done, result.observation.info) == (
            observation, reward, terminated or truncated, info)
        state = client.state()
        assert (state.env_id, state.seed, state.step_count, state.done) == ("fairgym/Allocation-v0", 4, 1, False)


def test_the_trl_tool_env_plays_a_served_env_as_a_local_one(served):
    from fairgym.training.tool_env import tool_env_factory

    episodes = []
    for url in (None, served):
        env = tool_env_factory("fairgym/Lending-v0", {"max_steps": 3}, env_url=url)()
        env.reset(seed=9)
        answers = [env.approve(), env.deny(), env.approve()]
        episodes.append((answers, as_json([env.episode]), env.get_reward()))
        env._close()
    assert episodes[0] == episodes[1]
