"""The grpo-episode recipe on the tiny model: loss mask, group seeds, reward components, resume, bad input."""

from __future__ import annotations

import json

import pytest

from fairgym.config import UnknownNameError
from fairgym.envs import records
from fairgym.training import TrainConfig, train
from fairgym.training import episode_grpo as eg
from fairgym.training.episode_rewards import component, make_episode_reward_funcs

LENDING = "fairgym/Lending-v0"


@pytest.fixture
def episode_config(tiny_config):
    def make(**overrides) -> TrainConfig:
        fields = dict(recipe="grpo-episode", batch_size=2, num_generations=2, max_completion_length=4,
                      env_kwargs={"max_steps": 3})
        return tiny_config(**{**fields, **overrides})

    return make


@pytest.fixture(scope="module")
def tiny_policy(tiny_model_dir):
    from fairgym.lm.models import load_model

    return load_model(str(tiny_model_dir), device="cpu")


def _spec(turn_tokens: int = 4) -> eg.EpisodeSpec:
    return eg.EpisodeSpec(turn_tokens=turn_tokens, temperature=1.0, context_window=1024)


# ---- the loss mask --------------------------------------------------------------------------------------------
def test_env_mask_marks_exactly_the_generated_tokens(episode_config, tiny_policy):
    model, tokenizer = tiny_policy
    config = episode_config()
    rollout = eg.play_episodes(model, tokenizer, [eg.make_env(config)], [3], _spec())[0]
    assert len(rollout.env_mask) == len(rollout.completion_ids)
    generated = sum(s["agent"]["completion_tokens"] for s in rollout.steps)
    assert sum(rollout.env_mask) == generated
    expected_env_tokens: list[int] = []  # what the env contributed, rebuilt from the record
    stops = eg.stop_ids(tokenizer)
    model_ids = [t for t, m in zip(rollout.completion_ids, rollout.env_mask, strict=True) if m]
    replies, i = [], 0
    for step in rollout.steps:
        reply = model_ids[i:i + step["agent"]["completion_tokens"]]
        i += len(reply)
        replies.append(reply)
    env = eg.make_env(config)
    for step, reply, nxt in zip(rollout.steps, replies, rollout.steps[1:] + [None], strict=True):
        assert tokenizer.decode([t for t in reply if t not in stops], skip_special_tokens=True) == step["action_text"]
        if not reply or reply[-1] not in stops:
            expected_env_tokens.append(tokenizer.eos_token_id)
        if nxt is not None:
            expected_env_tokens += eg.turn_ids(tokenizer, eg.next_user_turn(env, nxt["observation"], nxt))
    env_ids = [t for t, m in zip(rollout.completion_ids, rollout.env_mask, strict=True) if not m]
    assert env_ids == expected_env_tokens
    assert "Decision 2 of 3" in tokenizer.decode(env_ids)  # the observation turns are in the masked part


def test_trl_loss_mask_is_the_env_mask_and_groups_share_a_seed(episode_config, tiny_model_dir):
    from datasets import Dataset

    from fairgym.training.trainers import load_policy
    from fairgym.training.trl_config import lora_config

    config = episode_config(batch_size=4, episodes=4)
    model, tokenizer = load_policy(config)
    rollouts = eg.EpisodeRollouts(config, tokenizer, _spec(), log=None)
    seen: dict = {}

    def recording(prompts, trainer):
        seen.update(rollouts(prompts, trainer))
        return seen

    dataset = Dataset.from_list(eg.episode_rows(config))
    trainer = eg.build_episode_trainer(config, model, tokenizer, dataset, lora_config(config), rollouts=rollouts)
    trainer.rollout_func = recording
    batch = next(iter(trainer.get_train_dataloader()))
    out = trainer._generate_and_score_completions(batch)
    loss_mask = (out["completion_mask"] * out["tool_mask"]).tolist()
    for row, env_mask in zip(loss_mask, seen["env_mask"], strict=True):
        assert row[:len(env_mask)] == env_mask and not any(row[len(env_mask):])
    seeds = [ep["seed"] for ep in seen["episode"]]
    assert seeds == [row["seed"] for row in batch]
    assert seeds[0::2] == seeds[1::2] and len(set(seeds)) == 2  # G=2 rollouts per seed, two groups
    firsts = [ep["steps"][0]["observation"] for ep in seen["episode"]]
    assert firsts[0] == firsts[1] and firsts[2] == firsts[3]


# ---- reward components by hand ------------------------------------------------------------------------------------
def _step(turn, group, valid, reward, outcome):
    return {"turn": turn, "group": group, "choices": ["approve", "deny"], "context": {}, "observation": "",
            "action_text": "x", "action_valid": valid, "parse_error": None if valid else "bad", "action": None,
            "outcome": outcome, "reward": reward, "terminated": False, "truncated": False, "agent": None}


def _loan(approved, repays):
    return {"approved": approved, "would_repay": repays, "group_mean_score": {"A": 500.0, "B": 600.0}}


def _lending_episode():
    steps = [_step(0, "A", True, 1.0, _loan(True, True)), _step(1, "B", False, -1.0, None),
             _step(2, "B", True, 0.0, _loan(False, True)), _step(3, "A", True, 0.0, _loan(False, False))]
    return records.episode_record(env_id=LENDING, env_kwargs={}, seed=0, index=0, agent="scripted",
                                  groups=["A", "B"], steps=steps)


def test_lending_components_equal_a_hand_computation():
    episode = _lending_episode()
    assert component("task_return")(episode) == 0.0  # 1 - 1 + 0 + 0
    assert component("invalid_actions")(episode) == -1.0
    # approvals: A 1 of 2, B 0 of 1 -> demographic parity difference 0.5
    assert component("fairness", "fairness/demographic_parity_difference")(episode) == pytest.approx(-0.5)
    # cumulative gap by turn: t0, t1 only A decided (undefined), t2 A 1/1 vs B 0/1 = 1, t3 A 1/2 vs B 0/1 = 0.5
    assert component("fairness_per_turn", "fairness/demographic_parity_difference")(episode) == pytest.approx(-0.75)
    # equal opportunity: TPR A = 1/1 (the one who repays was approved), B = 0/1 -> 1
    assert component("fairness", "fairness/equal_opportunity_difference")(episode) == pytest.approx(-1.0)


def test_dialogue_toxicity_and_the_weighted_functions():
    steps = [_step(0, "A", True, -0.2, {"toxicity": 0.2}), _step(1, "A", False, -1.0, None),
             _step(2, "A", True, -0.6, {"toxicity": 0.6})]
    episode = records.episode_record(env_id="fairgym/Dialogue-v1", env_kwargs={}, seed=0, index=0, agent="s",
                                     groups=["A", "B"], steps=steps)
    assert component("toxicity")(episode) == pytest.approx(-0.4)  # the invalid turn has no reply to score
    funcs, weights = make_episode_reward_funcs("fairgym/Dialogue-v1", {"toxicity": 2.0, "task_return": 1.0})
    assert [f.__name__ for f in funcs] == ["task_return", "toxicity", "invalid_actions"]  # no fairness: one group
    assert weights == [1.0, 2.0, 0.5]
    values = [f([None], [None], episode=[episode])[0] for f in funcs]
    assert values == pytest.approx([-1.8, -0.4, -1.0])


def test_an_undefined_gap_is_left_out_not_zero():
    episode = _lending_episode()
    episode["steps"] = [s for s in episode["steps"] if s["group"] == "A"]  # group B never decided
    assert component("fairness", "fairness/demographic_parity_difference")(episode) is None


# ---- bad input -------------------------------------------------------------------------------------------------
def test_unknown_reward_component_fails_with_a_suggestion():
    with pytest.raises(UnknownNameError, match="Did you mean 'fairness'"):
        TrainConfig(recipe="grpo-episode", reward_weights={"fairnes": 1.0})
    with pytest.raises(ValueError, match="do not define 'toxicity'"):
        make_episode_reward_funcs(LENDING, {"toxicity": 1.0})


@pytest.mark.parametrize("env_id", [LENDING, "fairgym/Allocation-v0", "fairgym/Dialogue-v1"])
def test_unparseable_replies_are_invalid_actions_not_crashes(env_id, episode_config, tiny_policy):
    model, tokenizer = tiny_policy
    config = episode_config(env_id=env_id, env_kwargs={"max_steps": 2})
    env = eg.make_env(config)
    env.reset(seed=0)
    garbage = env.unwrapped.parse_action("")  # the empty reply every env rejects
    assert garbage.__class__.__name__ == "ParseError"
    rollout = eg.play_episodes(model, tokenizer, [env], [0], eg.EpisodeSpec(4, 1.0, 1024))[0]
    rollout_empty = eg.Rollout(env=env, seed=0, prompt_ids=[], observation="", info={})
    env.reset(seed=0)
    eg.apply_reply(rollout_empty, tokenizer, [tokenizer.eos_token_id], _spec())  # the model ends its turn at once
    step = rollout_empty.steps[0]
    assert step["action_text"] == "" and step["action_valid"] is False and step["reward"] == -1.0
    episode = eg.episode_of(rollout, env_id, {"max_steps": 2}, 0, "t", 0)
    invalid = sum(not s["action_valid"] for s in episode["steps"])
    assert len(episode["steps"]) == 2 and component("invalid_actions")(episode) == -invalid


def test_an_episode_longer_than_the_context_window_fails_before_training(episode_config, tmp_path):
    config = episode_config(env_kwargs={"max_steps": 20}, max_completion_length=16)
    with pytest.raises(ValueError, match="more than the model's context window of 1024"):
        train(config)
    assert not list((tmp_path / "run").glob("checkpoint-*"))


# ---- resume -----------------------------------------------------------------------------------------------------
def test_rerun_resumes_from_the_last_checkpoint(episode_config, tmp_path):
    first = train(episode_config(max_steps=1, save_steps=1))
    assert first.global_step == 1
    path = tmp_path / "run" / "rollouts" / "episodes.jsonl"
    stale = dict(records.read_episodes(path)[0], index=99, global_step=1)  # played at step 1, never checkpointed
    records.append_episode(path, stale)
    second = train(episode_config(max_steps=2, save_steps=1))
    assert second.global_step == 2
    episodes = records.read_episodes(path)
    assert [e["global_step"] for e in episodes] == [0, 0, 1, 1]  # step 0 not replayed, the stale step-1 pair gone
    assert [e["index"] for e in episodes] == [0, 1, 2, 3]
    state = json.loads((tmp_path / "run" / "trainer_state.json").read_text())
    assert [h["step"] for h in state["log_history"] if "loss" in h] == [1, 2]
    metrics = [json.loads(line) for line in (path.parent / "step_metrics.jsonl").read_text().splitlines()]
    assert [m["global_step"] for m in metrics] == [0, 1] and "format/invalid_action_rate" in metrics[0]


def test_rollout_metrics_reach_the_wandb_run(episode_config, monkeypatch):
    """With report_to=wandb, every step's rollout metrics are logged into the training's (offline) W&B run."""
    import wandb

    logged: list[dict] = []
    real_log = wandb.sdk.wandb_run.Run.log

    def recording(self, data, *args, **kwargs):
        logged.append(dict(data))
        return real_log(self, data, *args, **kwargs)

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setattr(wandb.sdk.wandb_run.Run, "log", recording)
    result = train(episode_config(max_steps=2, save_steps=10, report_to="wandb"))
    wandb.finish()
    rollout_rows = [row for row in logged if "rollout/episodes" in row]
    assert [row["train/global_step"] for row in rollout_rows] == [0, 1]
    assert all("task/return_mean" in row and "fairness/demographic_parity_difference" in row for row in rollout_rows)
    assert result.global_step == 2
