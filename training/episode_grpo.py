"""``grpo-episode``: GRPO over whole episodes, played as multi-turn rollouts inside TRL's ``GRPOTrainer``.

The model plays an episode of k decisions as one conversation: the env's first observation is the prompt
(``fairgym.lm.prompting.build_messages``), each reply is stepped through the env as raw text (the env
parses it, so a reply it cannot parse is an invalid action under its policy, never a crash), and the next
observation enters as a user turn. TRL trains the whole conversation after the prompt as one completion whose
``env_mask`` is 0 on the observation turns, so only the model's own tokens carry loss. Rewards are named
components over the finished episode (``fairgym.training.episode_rewards``), so what a decision does to later
applicants, sites or turns reaches the reward.

Why ``rollout_func`` and not ``environment_factory``: TRL 1.16's ``environment_factory`` exposes the env as
tools and requires a chat template that renders tool calls (``trl.chat_template_utils.supports_tool_calling``).
The embedded SmolLM2-135M-Instruct template renders only ``role`` and ``content``, so TRL rejects it ("The
provided chat template does not support tool calling"), and a 135M model is not tuned to emit tool-call JSON.
``rollout_func`` takes the conversation as plain user/assistant turns, which every chat model reads, and
returns ``env_mask`` for the observation tokens; decisions are the env's own text grammar ("approve",
"North=2, South=4", a free reply).

Each dataset row is one episode seed; TRL's sampler repeats a row ``num_generations`` times in a row, so the
G rollouts of a group start from the same env seed (the seed rides in the prompt's messages as
``episode_seed``, since ``rollout_func`` sees only the prompts). Every rollout is appended to
``<output_dir>/rollouts/episodes.jsonl`` in ``fairgym run``'s record format (``fairgym report`` reads the
folder), and each step's ``compute_metrics`` over its rollouts goes to ``rollouts/step_metrics.jsonl`` and to
W&B against ``train/global_step``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fairgym.envs import records
from fairgym.lm.generation import context_window, stop_ids
from fairgym.lm.prompting import apply_template, build_messages
from fairgym.runfiles import CONFIG_FILE, EPISODES_FILE, STEP_METRICS_FILE
from fairgym.training.config import TrainConfig

ROLLOUTS_DIR = "rollouts"
SEED_KEY = "episode_seed"  # carried by every prompt message: rollout_func sees prompts, not dataset columns


# ---- the dataset: one row per episode seed ---------------------------------------------------------------
def make_env(config: TrainConfig) -> Any:
    """A fresh env of the run (``env_id`` with ``env_kwargs``)."""
    from fairgym.envs import make_env as _make

    return _make(config.env_id, **dict(config.env_kwargs))


def first_prompt(env: Any, seed: int) -> list[dict[str, Any]]:
    """The chat messages of the episode's first decision, each carrying the episode seed."""
    observation, info = env.reset(seed=seed)
    return [{**m, SEED_KEY: int(seed)} for m in build_messages(observation, info)]


def episode_rows(config: TrainConfig) -> list[dict[str, Any]]:
    """Rows ``{prompt, seed, env_id, env_kwargs}`` for seeds ``seed .. seed + episodes - 1``."""
    env = make_env(config)
    kwargs = json.dumps(dict(config.env_kwargs), sort_keys=True)
    return [{"prompt": first_prompt(env, s), "seed": s, "env_id": config.env_id, "env_kwargs": kwargs}
            for s in range(config.seed, config.seed + config.episodes)]


def prompt_seed(prompt: list[dict[str, Any]]) -> int:
    """The episode seed a prompt was built from."""
    seed = prompt[0].get(SEED_KEY) if prompt and isinstance(prompt[0], dict) else None
    if seed is None:
        raise ValueError(f"The prompt carries no {SEED_KEY!r}: grpo-episode trains on the dataset episode_rows() "
                         "builds; a dataset_path dataset is not supported by this recipe.")
    return int(seed)


# ---- tokens of a conversation -------------------------------------------------------------------------------
def prompt_ids(tokenizer: Any, messages: list[dict[str, Any]]) -> list[int]:
    """Tokens of the chat-template prompt (``SEED_KEY`` is ignored by the template)."""
    text = apply_template(tokenizer, [{"role": m["role"], "content": m["content"]} for m in messages])
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def turn_ids(tokenizer: Any, message: dict[str, str]) -> list[int]:
    """Tokens the template puts after an assistant turn's end-of-turn token: ``message`` as the next turn, then
    the assistant's generation prompt (e.g. ``"\\n<|im_start|>user\\n...<|im_end|>\\n<|im_start|>assistant\\n"``).

    Computed as the difference of two renderings, as TRL does for tool results, so it follows any template.
    """
    base = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]
    before = tokenizer.apply_chat_template(base, tokenize=False)
    after = tokenizer.apply_chat_template(base + [message], tokenize=False, add_generation_prompt=True)
    cut = before.rfind(tokenizer.eos_token)
    end = cut + len(tokenizer.eos_token) if cut >= 0 else len(before)
    if not after.startswith(before[:end]):
        raise ValueError("The chat template is not prefix-preserving (rendering a further turn changes the earlier "
                         "ones), so observation turns cannot be appended to a rollout; use a ChatML-style model.")
    return tokenizer(after[end:], add_special_tokens=False)["input_ids"]


def next_user_turn(env: Any, observation: str, info: dict[str, Any]) -> dict[str, str]:
    """The next observation as a user turn: Dialogue's pending message, else the observation without the
    instructions the first turn already showed (feedback on an invalid answer stays)."""
    messages = info.get("messages")
    if messages and messages[-1]["role"] == "user":
        return {"role": "user", "content": messages[-1]["content"]}
    instructions = getattr(env.unwrapped, "instructions", "")
    if instructions and observation.startswith(instructions):
        observation = observation[len(instructions):].lstrip()
    return {"role": "user", "content": observation}


# ---- playing episodes -----------------------------------------------------------------------------------------
@dataclass
class EpisodeSpec:
    """How rollouts are played: tokens per turn, sampling temperature, the context window they must fit, and the
    tokens that end a turn (``fairgym.lm.generation.stop_ids`` of the policy: the ones evaluation stops at;
    empty: the tokenizer's own)."""

    turn_tokens: int
    temperature: float
    context_window: int
    stops: tuple[int, ...] = ()

    def stop_ids(self, tokenizer: Any) -> list[int]:
        """The stop tokens of this spec, or the tokenizer's when it names none."""
        return list(self.stops) or stop_ids(tokenizer)


@dataclass
class Rollout:
    """One episode in play: its env, the prompt tokens, the completion so far and its mask (1 = model token)."""

    env: Any
    seed: int
    prompt_ids: list[int]
    observation: str
    info: dict[str, Any]
    completion_ids: list[int] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)
    logprobs: list[float | None] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False

    def add(self, ids: list[int], model_tokens: bool, logprobs: list[float] | None = None) -> None:
        """Append tokens; ``logprobs``: the sampler's log-probability of each (``None`` where unknown, e.g. the
        env's tokens)."""
        self.completion_ids += ids
        self.env_mask += [1 if model_tokens else 0] * len(ids)
        self.logprobs += list(logprobs) if logprobs is not None else [None] * len(ids)


def start_rollout(env: Any, tokenizer: Any, seed: int) -> Rollout:
    """Reset ``env`` with ``seed``; the prompt is the first decision's chat."""
    observation, info = env.reset(seed=seed)
    return Rollout(env=env, seed=seed, prompt_ids=prompt_ids(tokenizer, build_messages(observation, info)),
                   observation=observation, info=info)


def generate_turn(model: Any, tokenizer: Any, sequences: list[list[int]], spec: EpisodeSpec) -> list[list[int]]:
    """One assistant turn for every sequence (one left-padded ``generate`` call); each reply is cut after its
    first end-of-turn token."""
    import torch

    stops = spec.stop_ids(tokenizer)
    width = max(len(s) for s in sequences)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    ids = torch.tensor([[pad] * (width - len(s)) + s for s in sequences], device=model.device)
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in sequences], device=model.device)
    sampling = {"do_sample": True, "temperature": spec.temperature, "top_p": 1.0, "top_k": 0} \
        if spec.temperature > 0 else {"do_sample": False}
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=spec.turn_tokens,
                             eos_token_id=stops, pad_token_id=pad, use_cache=True, **sampling)
    return [_cut_at_stop(row.tolist(), stops) for row in out[:, width:]]


def generate_turn_vllm(llm: Any, tokenizer: Any, sequences: list[list[int]],
                       spec: EpisodeSpec) -> tuple[list[list[int]], list[list[float]]]:
    """One assistant turn for every sequence in one call of a vLLM ``LLM`` (TRL's colocated engine, its weights the
    policy's), each reply cut after its first end-of-turn token; returns the replies and the log-probability vLLM
    sampled each token with (temperature applied: TRL starts vLLM with processed logprobs)."""
    from vllm import SamplingParams

    stops = spec.stop_ids(tokenizer)
    params = SamplingParams(n=1, temperature=spec.temperature, top_p=1.0, max_tokens=spec.turn_tokens,
                            stop_token_ids=stops, logprobs=0)
    outputs = llm.generate([{"prompt_token_ids": s} for s in sequences], sampling_params=params, use_tqdm=False)
    replies, logprobs = [], []
    for output in outputs:
        sample = output.outputs[0]
        ids = _cut_at_stop(list(sample.token_ids), stops)
        replies.append(ids)
        logprobs.append([step[token].logprob for step, token in zip(sample.logprobs, ids, strict=False)])
    return replies, logprobs


def _cut_at_stop(ids: list[int], stops: list[int]) -> list[int]:
    for i, token in enumerate(ids):
        if token in stops:
            return ids[: i + 1]
    return ids


def apply_reply(rollout: Rollout, tokenizer: Any, reply_ids: list[int], spec: EpisodeSpec,
                reply_logprobs: list[float] | None = None) -> None:
    """Step the env with the reply's text, record the step, and append the reply (model tokens, with the
    sampler's log-probabilities when known), a closing end-of-turn token when the reply ran out of tokens, and the
    next observation turn (env tokens)."""
    stops = spec.stop_ids(tokenizer)
    text = tokenizer.decode([t for t in reply_ids if t not in stops], skip_special_tokens=True)
    observation, reward, terminated, truncated, info = rollout.env.step(text)
    rollout.steps.append(records.step_record(rollout.observation, rollout.info, text, reward, info,
                                             terminated=terminated, truncated=truncated,
                                             agent_details={"completion_tokens": len(reply_ids)}))
    rollout.add(reply_ids, model_tokens=True, logprobs=reply_logprobs)
    if not reply_ids or reply_ids[-1] not in stops:
        rollout.add([tokenizer.eos_token_id], model_tokens=False)  # close the turn; the model did not write it
    rollout.observation, rollout.info = observation, info
    rollout.done = terminated or truncated
    if not rollout.done:
        rollout.add(turn_ids(tokenizer, next_user_turn(rollout.env, observation, info)), model_tokens=False)
        # a rollout that could not fit another turn ends here (check_episode_fits makes this the exception)
        rollout.done = len(rollout.prompt_ids) + len(rollout.completion_ids) + spec.turn_tokens > spec.context_window


def play_episodes(model: Any, tokenizer: Any, envs: list[Any], seeds: list[int], spec: EpisodeSpec,
                  llm: Any | None = None) -> list[Rollout]:
    """Play one episode per seed with every live episode batched into one generation call per turn: ``generate``
    on ``model``, or with ``llm`` (a vLLM engine) ``generate_turn_vllm``."""
    rollouts = [start_rollout(env, tokenizer, seed) for env, seed in zip(envs, seeds, strict=True)]
    live = list(rollouts)
    while live:
        sequences = [r.prompt_ids + r.completion_ids for r in live]
        logprobs: list[list[float] | None] = [None] * len(live)
        if llm is None:
            replies = generate_turn(model, tokenizer, sequences, spec)
        else:
            replies, sampled = generate_turn_vllm(llm, tokenizer, sequences, spec)
            logprobs = list(sampled)
        for rollout, reply, reply_logprobs in zip(live, replies, logprobs, strict=True):
            apply_reply(rollout, tokenizer, reply, spec, reply_logprobs)
        live = [r for r in live if not r.done]
    return rollouts


def episode_of(rollout: Rollout, env_id: str, env_kwargs: dict[str, Any], index: int, agent: str,
               global_step: int) -> dict[str, Any]:
    """The rollout as a ``fairgym run`` episode record, plus the training step it was played at."""
    record = records.episode_record(env_id=env_id, env_kwargs=env_kwargs, seed=rollout.seed, index=index,
                                    agent=agent, groups=list(getattr(rollout.env.unwrapped, "groups", ())),
                                    steps=rollout.steps)
    return {**record, "global_step": int(global_step)}


# ---- the rollout log: episodes.jsonl and per-step metrics beside it ------------------------------------------
class RolloutLog:
    """``rollouts/episodes.jsonl`` (every rollout, ``fairgym run`` records) and ``rollouts/step_metrics.jsonl``.

    On resume from checkpoint-k the records of steps >= k are dropped: those steps are played again.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.episodes_path = self.folder / EPISODES_FILE
        self.metrics_path = self.folder / STEP_METRICS_FILE
        self.next_index = 0

    def resume(self, from_step: int) -> None:
        """Keep only what steps before ``from_step`` wrote; the next index follows the last kept record."""
        self.folder.mkdir(parents=True, exist_ok=True)
        kept = [r for r in records.iter_episodes(self.episodes_path) if r.get("global_step", 0) < from_step]
        metrics = [r for r in records.iter_jsonl(self.metrics_path) if r.get("global_step", 0) < from_step]
        _rewrite(self.episodes_path, kept)
        _rewrite(self.metrics_path, metrics)
        self.next_index = max((r["index"] for r in kept), default=-1) + 1

    def write(self, episodes: list[dict[str, Any]], global_step: int,
              extra: dict[str, float] | None = None) -> dict[str, float]:
        """Append the episodes and their ``compute_metrics`` (with ``extra``); return the metrics (numbers only)."""
        from fairgym.analysis.metrics import compute_metrics

        for episode in episodes:
            records.append_episode(self.episodes_path, episode)
        metrics = {k: float(v) for k, v in compute_metrics(episodes).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        metrics.update(extra or {})
        records.append_episode(self.metrics_path, {"global_step": int(global_step), **metrics})
        return metrics


def _rewrite(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(records.dumps(r) + "\n" for r in rows))
    tmp.replace(path)


# ---- the TRL rollout function ---------------------------------------------------------------------------------
class EpisodeRollouts:
    """TRL ``rollout_func``: plays one episode per prompt and returns its tokens, ``env_mask`` and record.

    Args:
        config: the run's ``TrainConfig``.
        tokenizer: the policy's tokenizer.
        spec: tokens per turn, temperature and context window.
        log: where rollouts and per-step metrics are written (``None``: nowhere).
    """

    def __init__(self, config: TrainConfig, tokenizer: Any, spec: EpisodeSpec, log: RolloutLog | None) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.spec = spec
        self.log = log
        self.envs: list[Any] = []
        self.stats = {"episodes": 0, "seconds": 0.0}

    def _envs(self, count: int) -> list[Any]:
        while len(self.envs) < count:  # made once, reset per episode
            self.envs.append(make_env(self.config))
        return self.envs[:count]

    def __call__(self, prompts: list, trainer: Any) -> dict[str, Any]:
        from trl.models.utils import unwrap_model_for_generation

        seeds = [prompt_seed(p) for p in prompts]
        started = time.perf_counter()
        # with use_vllm, TRL has synced the policy's weights into its colocated engine before calling us
        llm = trainer.vllm_generation.llm if getattr(trainer, "use_vllm", False) else None
        if llm is not None:
            rollouts = play_episodes(None, self.tokenizer, self._envs(len(seeds)), seeds, self.spec, llm)
        else:
            with unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator) as model:
                rollouts = play_episodes(model, self.tokenizer, self._envs(len(seeds)), seeds, self.spec)
        self.stats["seconds"] += time.perf_counter() - started
        self.stats["episodes"] += len(rollouts)
        episodes = self._records(rollouts, trainer.state.global_step)
        if self.log is not None and trainer.accelerator.is_main_process:
            metrics = self.log.write(episodes, trainer.state.global_step, self.throughput())
            log_step_metrics(trainer, metrics, self.config.report_to == "wandb")
        # vLLM's sampling log-probabilities feed TRL's importance-sampling correction (None on env tokens: none)
        logprobs = [r.logprobs for r in rollouts] if llm is not None else None
        return {"prompt_ids": [r.prompt_ids for r in rollouts], "completion_ids": [r.completion_ids for r in rollouts],
                "logprobs": logprobs, "env_mask": [r.env_mask for r in rollouts], "episode": episodes}

    def throughput(self) -> dict[str, float]:
        """Rollouts played so far in this process and their rate (episodes per second of rollout time)."""
        seconds = self.stats["seconds"]
        return {"rollout/episodes": float(self.stats["episodes"]),
                "rollout/episodes_per_second": self.stats["episodes"] / seconds if seconds else float("nan")}

    def _records(self, rollouts: list[Rollout], global_step: int) -> list[dict[str, Any]]:
        start = self.log.next_index if self.log is not None else 0
        agent = f"grpo-episode:{self.config.arm}"
        out = [episode_of(r, self.config.env_id, dict(self.config.env_kwargs), start + i, agent, global_step)
               for i, r in enumerate(rollouts)]
        if self.log is not None:
            self.log.next_index = start + len(out)
        return out


def log_step_metrics(trainer: Any, metrics: dict[str, float], to_wandb: bool) -> None:
    """The rollouts' metrics (``fairgym run``'s keys) into the trainer's log history, and with ``to_wandb`` into the
    training's W&B run against ``train/global_step``."""
    step = trainer.state.global_step
    trainer.state.log_history.append({**metrics, "step": step, "rollout_metrics": True})
    if to_wandb:
        from fairgym.analysis.wandb_log import log_to_active_run

        log_to_active_run({**metrics, "train/global_step": step}, "logging of rollout metrics")


# ---- checks before training -------------------------------------------------------------------------------------
def episode_token_estimate(config: TrainConfig, tokenizer: Any) -> dict[str, int]:
    """Tokens a full episode needs: prompt, ``max_steps`` replies of ``max_completion_length`` tokens and the
    observation turns between them (the longest seen in one scripted episode of the ``random`` agent)."""
    from fairgym.agents import make_agent
    from fairgym.agents.runner import run_episodes

    env = make_env(config)
    episode = run_episodes(config.env_id, make_agent("random"), episodes=1, seed=config.seed,
                           env_kwargs=dict(config.env_kwargs), progress=False)[0]
    first = episode["steps"][0]
    prompt = len(prompt_ids(tokenizer, build_messages(first["observation"], first)))
    turns = [len(turn_ids(tokenizer, next_user_turn(env, s["observation"], s))) for s in episode["steps"][1:]]
    steps = int(env.unwrapped.max_steps)
    total = prompt + steps * (config.max_completion_length + 1) + (steps - 1) * max(turns, default=0)
    return {"prompt": prompt, "steps": steps, "observation_turn": max(turns, default=0), "total": total}


def check_episode_fits(config: TrainConfig, tokenizer: Any, window: int) -> dict[str, int]:
    """Fail before training when a whole episode cannot fit the model's context window.

    Raises:
        ValueError: naming the estimate, its parts and the settings to lower.
    """
    estimate = episode_token_estimate(config, tokenizer)
    if estimate["total"] > window:
        raise ValueError(
            f"An episode of {config.env_id} needs about {estimate['total']} tokens (prompt {estimate['prompt']}, "
            f"{estimate['steps']} replies of up to max_completion_length={config.max_completion_length} tokens, "
            f"observation turns of up to {estimate['observation_turn']}), more than the model's context window of "
            f"{window}; lower env_kwargs.max_steps or max_completion_length.")
    return estimate


# ---- the trainer ---------------------------------------------------------------------------------------------
def checkpoint_step(output_dir: str | Path, resume: bool) -> int:
    """The global step training resumes from: the last ``checkpoint-N`` when resuming, else 0."""
    from transformers.trainer_utils import get_last_checkpoint

    found = get_last_checkpoint(str(output_dir)) if resume and Path(output_dir).is_dir() else None
    return int(Path(found).name.rsplit("-", 1)[1]) if found else 0


def open_rollout_log(config: TrainConfig) -> RolloutLog | None:
    """The run's rollout log, cut back to the step training resumes from (main process only, else ``None``)."""
    from fairgym.config import save_config

    if int(os.environ.get("RANK", "0")) != 0:
        return None
    log = RolloutLog(Path(config.output_dir) / ROLLOUTS_DIR)
    log.resume(checkpoint_step(config.output_dir, config.resume))
    save_config(config, log.folder / CONFIG_FILE)  # so `fairgym report <output_dir>/rollouts` names the run
    return log


def build_episode_trainer(config: TrainConfig, model: Any, tokenizer: Any, dataset: Any, peft: Any,
                          callbacks: list | None = None,
                          rollouts: EpisodeRollouts | None = None) -> Any:
    """TRL's ``GRPOTrainer`` with the episode rollout function and one reward function per component.

    Args:
        config: the run's config (``recipe="grpo-episode"``).
        model: the policy; tokenizer: its tokenizer; dataset: ``episode_rows`` as a ``Dataset``.
        peft: the ``LoraConfig`` (``None`` for a full update).
        callbacks: extra trainer callbacks.
        rollouts: the rollout function (default: one writing ``<output_dir>/rollouts``).
    """
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is documented as experimental
    from trl import GRPOConfig, GRPOTrainer

    from fairgym.training.episode_rewards import make_episode_reward_funcs
    from fairgym.training.trl_config import trl_config

    components, weights = make_episode_reward_funcs(config.env_id, config.episode_reward_weights,
                                                    config.fairness_metric)
    funcs: list[Any] = list(components)
    window = context_window(model)
    if rollouts is None:
        spec = EpisodeSpec(config.max_completion_length, config.temperature, window, tuple(stop_ids(tokenizer, model)))
        rollouts = EpisodeRollouts(config, tokenizer, spec, open_rollout_log(config))
    args = trl_config(config, GRPOConfig, num_generations=config.num_generations, max_completion_length=window,
                      temperature=config.temperature, beta=config.beta, reward_weights=weights, shuffle_dataset=True)
    return GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=dataset, processing_class=tokenizer,
                       peft_config=peft, callbacks=callbacks, rollout_func=rollouts)
