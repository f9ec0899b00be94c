"""TRL's environment_factory on fairgym: the tool envs play the env by its grammar and score the episode with the
recipe's components; grpo-episode takes TRL's tool loop when the chat template renders tool calls (one real step)."""

from __future__ import annotations

import json

import pytest

from fairgym.config import UnknownNameError
from fairgym.envs import make_env, records
from fairgym.training import train
from fairgym.training.config import EPISODE_REWARDS
from fairgym.training.episode_grpo import next_user_turn
from fairgym.training.episode_rewards import component
from fairgym.training.tool_env import EPISODE_OVER, tool_env_factory, uses_tools

LENDING, ALLOCATION, DIALOGUE = "fairgym/Lending-v0", "fairgym/Allocation-v0", "fairgym/Dialogue-v1"


def local_steps(env_id: str, seed: int, actions: list[str], **kwargs) -> tuple[list[str], list[dict]]:
    """What the tool calls should answer and record: the env stepped in process with the same texts."""
    env = make_env(env_id, **kwargs)
    observation, info = env.reset(seed=seed)
    answers, steps = [], []
    for text in actions:
        after, reward, terminated, truncated, info_after = env.step(text)
        steps.append(records.step_record(observation, info, text, reward, info_after, terminated=terminated,
                                         truncated=truncated))
        answers.append(None if terminated or truncated else next_user_turn(env, after, info_after)["content"])
        observation, info = after, info_after
        if terminated or truncated:
            break
    return answers, steps


def test_lending_tools_step_the_env_and_score_the_recorded_episode():
    env = tool_env_factory(LENDING, {"max_steps": 4})()
    first = env.reset(seed=3, prompt=[], env_id=LENDING)  # TRL passes the whole dataset row
    assert first.startswith(make_env(LENDING, max_steps=4).reset(seed=3)[0]) and first.endswith("approve or deny.")
    calls = [env.approve, env.deny, env.approve, env.deny]
    answers, steps = local_steps(LENDING, 3, ["approve", "deny", "approve", "deny"], max_steps=4)
    for call, expected in zip(calls, answers, strict=True):
        answer = call()
        assert answer == expected or (expected is None and answer.startswith(EPISODE_OVER))
    assert json.loads(records.dumps(env.episode))["steps"] == json.loads(records.dumps({"s": steps}))["s"]
    assert env.episode["seed"] == 3 and env.episode["start"]["group_mean_score"]
    assert env.get_reward() == pytest.approx(sum(s["reward"] for s in steps))  # default weights; every action valid
    assert env.approve() == EPISODE_OVER and len(env.episode["steps"]) == 4  # nothing left to decide


def test_decisions_never_made_count_as_invalid_and_weights_apply():
    env = tool_env_factory(LENDING, {"max_steps": 5}, reward_weights={"invalid_actions": 2.0, "fairness": 1.0})()
    env.reset(seed=0)
    env.approve()
    episode = env.episode
    expected = (component("task_return")(episode) + (component("fairness", "fairness/demographic_parity_difference")
                                                     (episode) or 0.0) - 2.0 * 4)
    assert env.get_reward() == pytest.approx(expected)
    fresh = tool_env_factory(LENDING, {"max_steps": 5})()
    fresh.reset(seed=0)
    assert fresh.get_reward() == -EPISODE_REWARDS["invalid_actions"] * 5


def test_allocation_and_dialogue_tools_speak_the_env_grammar():
    allocation = tool_env_factory(ALLOCATION, {"max_steps": 3})()
    allocation.reset(seed=1)
    answers, _ = local_steps(ALLOCATION, 1, ["North=2, South=4"], max_steps=3)
    assert allocation.allocate({"North": 2, "South": 4}) == answers[0]
    allocation.allocate(["North", 6])  # not a mapping: the env's invalid-action policy, never a crash
    assert [s["action_valid"] for s in allocation.episode["steps"]] == [True, False]
    dialogue = tool_env_factory(DIALOGUE, {"max_steps": 2})()
    dialogue.reset(seed=2)
    dialogue.reply("Thanks for sharing that.")
    assert dialogue.episode["steps"][0]["outcome"]["toxicity"] is not None


def test_tool_methods_have_the_json_schemas_trl_renders():
    from transformers.utils import get_json_schema

    env = tool_env_factory(ALLOCATION)()
    schema = get_json_schema(env.allocate)["function"]
    assert schema["name"] == "allocate" and schema["parameters"]["properties"]["units"]["type"] == "object"
    assert get_json_schema(tool_env_factory(LENDING)().approve)["function"]["parameters"]["properties"] == {}
    with pytest.raises(UnknownNameError, match="Did you mean 'invalid_actions'"):
        tool_env_factory(LENDING, reward_weights={"invalid_action": 1.0})


# The tool call the test model writes, as three added tokens, so a bigram chain can spell it.
TOOL_CALL_TOKENS = ["<tool_call>\n", '{"name": "approve", "arguments": {}}', "\n</tool_call>"]


def build_tool_model(folder) -> None:
    """A tiny Llama with Qwen2.5's chat template (shipped inside TRL, so offline) that answers every decision with
    an ``approve`` tool call: its attention and MLP outputs are zero, so each next token depends on the current one
    only, and the embeddings chain the generation prompt's last token to the tool call and then to end-of-turn."""
    import torch
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from trl.chat_template_utils import qwen2_5_chat_template

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer, raw.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    raw.train_from_iterator(["approve deny applicant credit score tool call assistant user system"] * 10,
                            trainer=trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>", "<|im_start|>",
                                                                                        "<|im_end|>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    raw.add_tokens([AddedToken(t, special=False, normalized=False) for t in TOOL_CALL_TOKENS])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                        pad_token="<|endoftext|>", unk_token="<|endoftext|>")
    tokenizer.chat_template = qwen2_5_chat_template
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=4096, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False))
    generation_prompt = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], add_generation_prompt=True,
                                                      tokenize=False)
    start = tokenizer(generation_prompt, add_special_tokens=False)["input_ids"][-1]
    chain = [start, *tokenizer.convert_tokens_to_ids(TOOL_CALL_TOKENS), tokenizer.eos_token_id]
    with torch.no_grad():
        for layer in model.model.layers:  # the residual stream keeps the current token's embedding only
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.mul_(0.01)
        model.lm_head.weight.mul_(0.01)
        for dim, (current, following) in enumerate(zip(chain[:-1], chain[1:], strict=True)):
            model.model.embed_tokens.weight[current] = torch.nn.functional.one_hot(torch.tensor(dim), 64).float()
            model.lm_head.weight[following, dim] = 100.0
    model.eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)


@pytest.fixture
def tool_model_dir(tmp_path):
    folder = tmp_path / "tool-model"
    build_tool_model(folder)
    return folder


@pytest.mark.slow
def test_grpo_episode_trains_through_environment_factory_when_the_template_renders_tools(tiny_config, tool_model_dir,
                                                                                         tok, tmp_path):
    from transformers import AutoTokenizer

    assert uses_tools(AutoTokenizer.from_pretrained(tool_model_dir)) and not uses_tools(tok)
    config = tiny_config(recipe="grpo-episode", model=str(tool_model_dir), batch_size=2, num_generations=2,
                         max_completion_length=4, env_kwargs={"max_steps": 2}, max_steps=1, method="lora")
    result = train(config)
    assert result.global_step == 1
    state = json.loads((tmp_path / "run" / "trainer_state.json").read_text())
    logged = {k for h in state["log_history"] for k in h}
    # get_reward is TRL's reward (named after the tool env class); the components are logged beside it
    assert {"rewards/LendingTools/mean", "rewards/task_return/mean", "rewards/invalid_actions/mean"} <= logged
    episodes = records.read_episodes(tmp_path / "run" / "rollouts" / "episodes.jsonl")
    # the model called the tools: TRL stepped fairgym's env through whole episodes, recorded in fairgym's format
    assert len(episodes) == 2 and {e["agent"] for e in episodes} == {"trl-environment-factory"}
    assert [[s["turn"] for s in e["steps"]] for e in episodes] == [[0, 1], [0, 1]]
    assert all(s["action_text"] == "approve" and s["action_valid"] for e in episodes for s in e["steps"])
    assert len({e["seed"] for e in episodes}) == 1  # a GRPO group plays the same episode seed
    # TRL's reward is get_reward: here (every decision made and valid) the mean of the episodes' returns
    logged_reward = next(h["rewards/LendingTools/mean"] for h in state["log_history"]
                         if "rewards/LendingTools/mean" in h)
    assert logged_reward == pytest.approx(sum(e["return"] for e in episodes) / 2)
