"""The verifiers environment: episodes rolled out by verifiers' own loop (a scripted client, no model server) score
the returns of the same policy on the in-process env, in process and on a served env."""

from __future__ import annotations

import re

import pytest

from fairgym.envs import make_env
from fairgym.serve.verifiers_env import ScriptedClient, load_environment

SCORE = re.compile(r"credit score of (\d+)")


def threshold_policy(text: str) -> str:
    """Approve a score of 600 or more; answer something unparseable for the lowest scores."""
    score = int(SCORE.findall(text)[-1])
    return "maybe" if score < 350 else ("approve" if score >= 600 else "deny")


def local_return(seed: int, max_steps: int) -> tuple[float, int]:
    env = make_env("fairgym/Lending-v0", max_steps=max_steps)
    observation, _ = env.reset(seed=seed)
    total, invalid, done = 0.0, 0, False
    while not done:
        observation, reward, terminated, truncated, info = env.step(threshold_policy(observation))
        total, invalid, done = total + reward, invalid + (not info["action_valid"]), terminated or truncated
    return total, invalid


@pytest.mark.parametrize("remote", [False, True])
def test_verifiers_rollouts_score_the_in_process_returns(served, remote):
    env = load_environment("fairgym/Lending-v0", {"max_steps": 6}, env_url=served if remote else None,
                           num_train_episodes=2, num_eval_episodes=4, seed=10)
    assert env.eval_dataset["answer"] == ["12", "13", "14", "15"]  # eval seeds follow the train seeds
    assert env.eval_dataset["question"][0] == make_env("fairgym/Lending-v0", max_steps=6).reset(seed=12)[0]
    client = ScriptedClient(lambda messages: threshold_policy(messages[-1]["content"]))
    outputs = env.evaluate_sync(client, model="threshold-600")["outputs"]
    for output in outputs:
        expected_return, expected_invalid = local_return(int(output["answer"]), 6)
        assert output["reward"] == pytest.approx(expected_return)
        assert output["metrics"]["invalid_actions"] == expected_invalid
    assert {o["answer"] for o in outputs} == {"12", "13", "14", "15"}


def test_load_environment_rejects_bad_arguments_before_building_data():
    with pytest.raises(TypeError, match="unknown argument"):
        load_environment("fairgym/Lending-v0", {"max_step": 3})
    with pytest.raises(ValueError, match="Did you mean 'fairgym/Lending-v0'"):
        load_environment("fairgym/Lendng-v0")
