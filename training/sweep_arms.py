"""The sweep's arms: which exist (``plan_arms``), and each arm's model and agent for evaluation.

An arm is ``base`` (the untrained, possibly implanted, base model), ``full-s<seed>`` (a full fine-tune) or
``<variant>-r<rank>-s<seed>`` (LoRA, or a PEFT variant, at rank r); its label (the name without the seed) is the
unit that intervals over seeds are taken over.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fairgym.runfiles import arm_label, arm_name
from fairgym.training.sweep_config import SweepConfig
from fairgym.training.sweep_folder import locate_weights


@dataclass(frozen=True)
class Arm:
    """One arm of the sweep: ``method`` is ``"base"``, ``"lora"`` or ``"full"``."""

    name: str
    method: str
    rank: int | None = None
    seed: int | None = None
    variant: str | None = None

    @property
    def label(self) -> str:
        """The arm without its seed (``lora-r8``), the unit that intervals over seeds are taken over."""
        return arm_label(self.name, self.seed)

    @property
    def lr_method(self) -> str:
        """The ``learning_rates`` key of the arm's method: ``"full"`` or ``"lora"`` (variants included)."""
        return "full" if self.method == "full" else "lora"


def plan_arms(config: SweepConfig) -> list[Arm]:
    """Every arm, in run order: base, then per seed the full arm and the LoRA (and variant) ranks."""
    arms = [Arm("base", "base")] if config.include_base else []
    for seed in config.seeds:
        if config.include_full:
            arms.append(Arm(arm_name("full", seed), "full", seed=seed))
        for variant in [None, *config.variants]:
            arms += [lora_arm(r, seed, variant) for r in config.ranks]
    return arms


def lora_arm(rank: int, seed: int | None, variant: str | None = None) -> Arm:
    """The LoRA (or PEFT-variant) arm at ``rank`` and ``seed``: ``lora-r8-s0``, ``dora-r8-s0``."""
    return Arm(arm_name(f"{variant or 'lora'}-r{rank}", seed), "lora", rank=rank, seed=seed, variant=variant)


def load_arm_model(config: SweepConfig, weights: dict[str, Any], sweep_dir: Path | None = None) -> tuple[Any, Any]:
    """The arm's model (base, base + adapter, or the full checkpoint) in eval mode, and its tokenizer; recorded
    paths are looked up under ``sweep_dir`` when the working directory differs from the run's."""
    from fairgym.lm.models import load_model

    return load_model(locate_weights(weights["model"], sweep_dir), locate_weights(weights.get("adapter"), sweep_dir),
                      device=config.device, dtype=config.dtype)


def make_llm_agent(config: SweepConfig, model: Any, tokenizer: Any, name: str, decide: str = "choice") -> Any:
    """A greedy ``LLMAgent`` (choice scoring picks the most likely choice; generation is greedy)."""
    from fairgym.agents.llm import LLMAgent

    agent = LLMAgent.from_model(model, tokenizer, decide=decide, temperature=0.0, batch_size=config.eval.batch_size)
    agent.name = f"llm:{name}"
    return agent
