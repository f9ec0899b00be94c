"""The DPO rejecter decides from decision keys like every other agent: its draw at a state is the one it makes
when the runner poses that state, whatever order the rows come in or batch they share."""

from __future__ import annotations

from fairgym.agents import make_agent
from fairgym.agents.base import DecisionKey
from fairgym.training import TrainConfig
from fairgym.training.datasets import preferences, rejected_actions, step_rows, teacher_episodes

DIALOGUE = "fairgym/Dialogue-v1"


def rows_and_agent(rejecter: str, env_id: str = "fairgym/Lending-v0", **env_kwargs):
    config = TrainConfig(env_id=env_id, env_kwargs={"max_steps": 6, **env_kwargs}, episodes=3, seed=7)
    return config, step_rows(teacher_episodes(config, make_agent("fair-oracle")))


def keyed(agent_name: str, row: dict, run_seed: int) -> str:
    agent = make_agent(agent_name)
    agent.reset(run_seed)
    key = DecisionKey(episode_seed=row["seed"], turn=row["turn"])
    return agent.act([row["prompt"][-1]["content"]], [row["info"]], decision_keys=[key])[0]


def test_a_random_rejecter_draws_each_states_key_in_any_order():
    config, rows = rows_and_agent("random")
    forward = rejected_actions(make_agent("random"), rows, config.seed)
    backward = rejected_actions(make_agent("random"), rows[::-1], config.seed)
    assert backward[::-1] == forward
    assert forward == [keyed("random", row, config.seed) for row in rows]
    per_episode = {}
    for row, action in zip(rows, forward, strict=True):
        per_episode.setdefault(row["seed"], set()).add(action)
    assert max(len(actions) for actions in per_episode.values()) == 2  # turns draw apart, not one draw per episode


def test_the_hostile_rejecter_is_batch_invariant_given_keys():
    config, rows = rows_and_agent("hostile", env_id=DIALOGUE)
    agent = make_agent("hostile", group=rows[0]["group"])
    agent.reset(config.seed)
    keys = [DecisionKey(episode_seed=r["seed"], turn=r["turn"]) for r in rows]
    batch = agent.act([r["prompt"][-1]["content"] for r in rows], [r["info"] for r in rows], decision_keys=keys)
    single = rejected_actions(make_agent("hostile", group=rows[0]["group"]), rows, config.seed)
    assert batch == single and len(set(batch)) > 2


def test_preference_pairs_do_not_depend_on_the_order_of_the_data():
    common = dict(env_id="fairgym/Lending-v0", env_kwargs={"max_steps": 5}, seed=3, rejected_teacher="random",
                  data="preferences", recipe="dpo")
    short = preferences(TrainConfig(episodes=2, **common))
    longer = preferences(TrainConfig(episodes=3, **common))
    assert [r["rejected"] for r in longer[:len(short)]] == [r["rejected"] for r in short]
