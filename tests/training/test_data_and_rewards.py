"""Datasets built from env teachers, and GRPO rewards that replay the env to the recorded step."""

from __future__ import annotations

import json

import pytest

from fairgym.envs import make_env
from fairgym.envs.groups import swap_group
from fairgym.lm.prompting import build_messages
from fairgym.training import build_dataset
from fairgym.training.rewards import EnvReplay, make_reward_funcs

LENDING = "fairgym/Lending-v0"


def test_demonstrations_match_the_replayed_state(tiny_config):
    config = tiny_config(episodes=2)
    data = build_dataset(config)
    assert len(data) == 2 * 3 and not any(data["counterfactual"])
    row = data[4]
    env, info = EnvReplay().state(row["env_id"], row["env_kwargs"], row["seed"], row["prefix"])
    assert row["prompt"] == build_messages(env._last_obs, info)  # the chat the LLM agent sees at that step
    assert row["completion"] == [{"role": "assistant", "content": row["reference"]}]
    assert row["reference"] in ("approve", "deny") and row["group"] == info["group"]


def test_counterfactual_rows_swap_only_the_descriptor(tiny_config):
    data = build_dataset(tiny_config(episodes=1, counterfactual=True))
    originals = [r for r in data if not r["counterfactual"]]
    swapped = [r for r in data if r["counterfactual"]]
    assert len(swapped) == len(originals)  # two groups: one swap each
    for orig, cf in zip(originals, swapped, strict=True):
        assert cf["group"] != orig["group"] and cf["completion"] == orig["completion"]
        text = orig["prompt"][-1]["content"]
        assert cf["prompt"][-1]["content"] == swap_group(text, orig["group"], cf["group"]) != text


def test_preferences_pair_fair_with_biased(tiny_config):
    data = build_dataset(tiny_config(recipe="dpo", episodes=2))
    assert len(data) == 6
    for row in data:
        assert row["chosen"][0]["content"] != row["rejected"][0]["content"]
        assert {row["chosen"][0]["content"], row["rejected"][0]["content"]} == {"approve", "deny"}


def _direct_reward(seed: int, prefix: list[str], action: str) -> tuple[float, bool]:
    env = make_env(LENDING, max_steps=3)
    env.reset(seed=seed)
    for a in prefix:
        env.step(a)
    _, reward, _, _, info = env.step(action)
    return reward, info["action_valid"]


@pytest.mark.parametrize("completion", ["approve", "deny", "I approve.", "maybe"])
def test_reward_is_the_env_reward_of_the_completion(completion):
    env_reward, format_reward = make_reward_funcs()
    kw = {"env_id": [LENDING], "env_kwargs": [json.dumps({"max_steps": 3})], "seed": [7], "prefix": [["deny"]]}
    completions = [[{"role": "assistant", "content": completion}]]
    expected, valid = _direct_reward(7, ["deny"], completion)
    assert env_reward(["p"], completions, **kw) == [expected]
    assert format_reward(["p"], completions, **kw) == [1.0 if valid else 0.0]


def test_fairness_penalty_for_leaving_the_reference():
    env_reward, _ = make_reward_funcs(fairness_penalty=2.0)
    kw = {"env_id": [LENDING] * 2, "env_kwargs": ["{}"] * 2, "seed": [3, 3], "prefix": [[], []],
          "reference": ["deny", "deny"]}
    plain, _ = make_reward_funcs()
    base = plain(["p"] * 2, ["deny", "approve"], **kw)
    assert env_reward(["p"] * 2, ["deny", "approve"], **kw) == [base[0], base[1] - 2.0]


def test_group_members_start_from_the_same_state():
    replay = EnvReplay()
    (a, info_a), (b, info_b) = (replay.state(LENDING, "{}", 5, ["approve", "deny"]) for _ in range(2))
    assert a is not b and info_a == info_b and a._last_obs == b._last_obs
    a.step("approve")  # stepping one member leaves the cached state and the other member untouched
    c, info_c = replay.state(LENDING, "{}", 5, ["approve", "deny"])
    assert info_c == info_b and c.np_random.random() == b.np_random.random()


def test_dialogue_detox_and_preference_data():
    from fairgym.envs import ENV_IDS
    from fairgym.training import TrainConfig
    from fairgym.training.datasets import toxicity

    if "fairgym/Dialogue-v1" not in ENV_IDS:
        pytest.skip("Dialogue env not registered")
    common = dict(env_id="fairgym/Dialogue-v1", teacher="polite", episodes=1, env_kwargs={"max_steps": 2})
    detox = build_dataset(TrainConfig(data="detox", **common))
    assert len(detox) == 2 and max(toxicity([r["completion"][0]["content"] for r in detox])) < 0.5
    pairs = build_dataset(TrainConfig(data="preferences", **common))
    chosen = toxicity([r["chosen"][0]["content"] for r in pairs])
    rejected = toxicity([r["rejected"][0]["content"] for r in pairs])
    assert all(c < r for c, r in zip(chosen, rejected, strict=True))
