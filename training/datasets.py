"""Training data built from fairgym envs, as ``datasets.Dataset`` in TRL's conversational formats.

Every row keeps the key of the env step it came from (``env_id``, ``env_kwargs`` as JSON, ``seed``, ``turn``,
``prefix`` = the action texts taken before it), so GRPO's reward functions can replay the env to that state.

Kinds:
    - ``demonstrations``: prompt = the chat the LLM agent sees (``build_messages``), completion = the teacher's
      action text (prompt-completion format, SFT and GRPO);
    - ``detox``: Dialogue turns answered by replies the toxicity scorer rates non-toxic (rejection-sampled from a
      model when ``sampler_model`` is set, else the teacher's template replies);
    - ``preferences``: prompt, chosen = the fair / non-toxic action, rejected = the biased / toxic one (DPO).
Counterfactual augmentation adds, for every row, copies with only the group descriptor swapped (``swap_group``
on every message) and the same target.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datasets import Dataset

from fairgym.envs import keys
from fairgym.envs.records import step_info
from fairgym.training.config import TrainConfig

REQUIRED_COLUMNS = {"sft": ("prompt", "completion"), "grpo": ("prompt", "env_id", "env_kwargs", "seed", "prefix"),
                    "dpo": ("prompt", "chosen", "rejected"), "grpo-episode": ("prompt", "seed")}


def teacher_episodes(config: TrainConfig, teacher: Any) -> list[dict[str, Any]]:
    """Seeded episodes of ``config.env_id`` played by ``teacher`` (seeds ``config.seed + i``)."""
    from fairgym.agents.runner import run_episodes

    return run_episodes(config.env_id, teacher, episodes=config.episodes, seed=config.seed,
                        env_kwargs=dict(config.env_kwargs), progress=False)


def step_rows(episodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per recorded step: the prompt the LLM agent would see, the action taken and the replay key."""
    from fairgym.lm.prompting import build_messages

    rows = []
    for episode in episodes:
        prefix: list[str] = []
        kwargs = json.dumps(episode.get("env_kwargs") or {}, sort_keys=True)
        for step in episode["steps"]:
            info = step_info(step)
            rows.append({"prompt": build_messages(step["observation"], info), "action": step["action_text"],
                         "info": info, "env_id": episode["env_id"], "env_kwargs": kwargs,
                         "seed": int(episode["seed"]), "turn": int(step[keys.TURN]), "prefix": list(prefix),
                         "group": step.get(keys.GROUP) or "", "counterfactual": False})
            prefix.append(step["action_text"])
    return rows


def _public(row: dict[str, Any], **targets: Any) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("action", "info")}
    return {**out, **targets}


def assistant(text: str) -> list[dict[str, str]]:
    """A completion in conversational form."""
    return [{"role": "assistant", "content": text}]


def swap_messages(messages: list[dict[str, str]], source: str, target: str) -> list[dict[str, str]]:
    """``messages`` with only the group descriptor swapped in every message."""
    from fairgym.envs.groups import swap_group

    return [{"role": m["role"], "content": swap_group(m["content"], source, target)} for m in messages]


def counterfactuals(rows: list[dict[str, Any]], groups: list[str]) -> list[dict[str, Any]]:
    """For each row, one copy per other group with the descriptor swapped in the prompt; targets unchanged."""
    out = []
    for row in rows:
        for target in groups:
            if row["group"] and target != row["group"]:
                out.append({**row, "prompt": swap_messages(row["prompt"], row["group"], target), "group": target,
                            "counterfactual": True})
    return out


def env_groups(config: TrainConfig) -> list[str]:
    """The group descriptors of ``config.env_id`` with ``config.env_kwargs``."""
    from fairgym.envs import make_env

    env = make_env(config.env_id, **config.env_kwargs)
    try:
        return list(getattr(env.unwrapped, "groups", ()))
    finally:
        env.close()


def demonstrations(config: TrainConfig) -> list[dict[str, Any]]:
    """Teacher demonstrations in prompt-completion form (``reference`` = the teacher's action text)."""
    from fairgym.agents import make_agent

    teacher = make_agent(config.teacher, **config.teacher_kwargs)
    rows = [_public(r, completion=assistant(r["action"]), reference=r["action"])
            for r in step_rows(teacher_episodes(config, teacher))]
    return rows


def _default_rejected(config: TrainConfig) -> str:
    from fairgym.agents.teachers import biased_teacher

    return config.rejected_teacher or biased_teacher(config.env_id)


def _calibrated(agent: Any, config: TrainConfig) -> Any:
    """``agent`` calibrated as ``run_episodes`` does it (env reset with the seed, unwrapped), the env then closed."""
    if hasattr(agent, "calibrate"):
        from fairgym.agents.runner import calibrate
        from fairgym.envs import make_env

        env = make_env(config.env_id, **config.env_kwargs)
        try:
            calibrate(agent, env, config.seed)
        finally:
            env.close()
    return agent


def rejected_actions(rejecter: Any, rows: list[dict[str, Any]], run_seed: int) -> list[str]:
    """The rejecter's action at each row's state, each drawn from the row's ``DecisionKey`` (episode seed, turn)
    as the runner would pass it, so a draw depends on the state it decides and never on the order of the rows.

    An agent whose ``act`` takes no ``decision_keys`` (one written before the keys) is reset with each row's episode
    seed instead, which keeps it independent of the order too.
    """
    from fairgym.agents.base import DecisionKey, accepts_decision_keys

    keyed = accepts_decision_keys(rejecter)
    rejecter.reset(run_seed)
    out = []
    for row in rows:
        observation, info = [row["prompt"][-1]["content"]], [row["info"]]
        if keyed:
            key = DecisionKey(episode_seed=int(row["seed"]), turn=int(row["turn"]))
            out.append(rejecter.act(observation, info, decision_keys=[key])[0])
        else:
            rejecter.reset(int(row["seed"]))
            out.append(rejecter.act(observation, info)[0])
    return out


def preferences(config: TrainConfig) -> list[dict[str, Any]]:
    """DPO pairs over the teacher's states: chosen = teacher action, rejected = the rejected teacher's action there.

    Where both agree on a discrete decision, the rejected side is another valid choice, so every state gives a pair.
    """
    from fairgym.agents import make_agent

    teacher = make_agent(config.teacher, **config.teacher_kwargs)
    rejecter = _calibrated(make_agent(_default_rejected(config), **config.rejected_teacher_kwargs), config)
    rows = step_rows(teacher_episodes(config, teacher))
    out = []
    for row, rejected in zip(rows, rejected_actions(rejecter, rows, config.seed), strict=True):
        choices = row["info"].get(keys.CHOICES) or []
        if rejected == row["action"] and choices:
            rejected = next(c for c in choices if c != row["action"])
        if rejected != row["action"]:
            out.append(_public(row, chosen=assistant(row["action"]), rejected=assistant(rejected),
                               reference=row["action"]))
    return out


def detox(config: TrainConfig) -> list[dict[str, Any]]:
    """Dialogue turns with non-toxic replies: sampled from ``sampler_model`` when set, else template replies."""
    from fairgym.agents import make_agent

    teacher = make_agent(config.teacher, **config.teacher_kwargs)
    rows = step_rows(teacher_episodes(config, teacher))
    sampled = sample_replies(config, [r["prompt"] for r in rows]) if config.sampler_model else [[] for _ in rows]
    candidates = [[*s, r["action"]] for s, r in zip(sampled, rows, strict=True)]
    scores = toxicity([c for cands in candidates for c in cands])
    out, i = [], 0
    for row, cands in zip(rows, candidates, strict=True):
        kept = [c for c, s in zip(cands, scores[i:i + len(cands)], strict=True) if s < config.toxicity_threshold]
        i += len(cands)
        if kept:
            out.append(_public(row, completion=assistant(kept[0]), reference=kept[0]))
    return out


def toxicity(texts: list[str]) -> list[float]:
    """Toxicity in [0, 1] per text: fairgym's default scorer (alt-profanity-check)."""
    if not texts:
        return []
    from fairgym.envs.toxicity import make_scorer, score_texts

    return [float(s) for s in score_texts(make_scorer(), texts)]


def sample_replies(config: TrainConfig, prompts: list[list[dict[str, str]]]) -> list[list[str]]:
    """``detox_samples`` sampled replies per prompt from ``sampler_model`` (rejection-sampling candidates)."""
    import torch

    from fairgym.lm.models import load_model
    from fairgym.lm.prompting import apply_template

    name = None if config.sampler_model == "embedded" else config.sampler_model
    model, tokenizer = load_model(name, device="cpu" if config.device is None else config.device)
    torch.manual_seed(config.seed)
    out = []
    for messages in prompts:
        enc = tokenizer([apply_template(tokenizer, messages)], return_tensors="pt").to(model.device)
        gen = model.generate(**enc, do_sample=True, max_new_tokens=48, num_return_sequences=config.detox_samples,
                             pad_token_id=tokenizer.pad_token_id)
        out.append([t.strip() for t in tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:],
                                                             skip_special_tokens=True)])
    return out


def episodes(config: TrainConfig) -> list[dict[str, Any]]:
    """One row per episode seed (``grpo-episode``); see ``fairgym.training.episode_grpo.episode_rows``."""
    from fairgym.training.episode_grpo import episode_rows

    return episode_rows(config)


BUILDERS = {"demonstrations": demonstrations, "detox": detox, "preferences": preferences, "episodes": episodes}


def load_dataset_file(path: str | Path) -> Dataset:
    """A saved dataset: a ``save_to_disk`` folder or a ``.jsonl`` file."""
    path = Path(path)
    if path.is_dir():
        return Dataset.load_from_disk(str(path))
    if path.suffix in (".jsonl", ".json") and path.is_file():
        return Dataset.from_json(str(path)) if path.read_text().strip() else Dataset.from_list([])
    raise FileNotFoundError(f"dataset_path={str(path)!r} is neither a save_to_disk folder nor a .jsonl file.")


def build_dataset(config: TrainConfig) -> Dataset:
    """The run's dataset: ``dataset_path`` when given, else built from ``config.env_id`` by ``config.data_kind``."""
    if config.dataset_path:
        return load_dataset_file(config.dataset_path)
    rows = BUILDERS[config.data_kind](config)
    if config.counterfactual and rows:
        rows = rows + counterfactuals(rows, env_groups(config))
    return Dataset.from_list(rows)


def check_dataset(dataset: Dataset, config: TrainConfig) -> None:
    """Fail before training on an empty dataset or one missing the recipe's columns."""
    source = config.dataset_path or f"{config.data_kind} from {config.env_id} ({config.episodes} episodes)"
    if len(dataset) == 0:
        raise ValueError(f"The training dataset is empty ({source}); raise episodes, check the teacher "
                         f"({config.teacher!r}) or the dataset_path.")
    missing = [c for c in REQUIRED_COLUMNS[config.recipe] if c not in dataset.column_names]
    if missing:
        raise ValueError(f"The dataset ({source}) lacks columns {missing} that recipe={config.recipe!r} needs; it "
                         f"has {dataset.column_names}.")
