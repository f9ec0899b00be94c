"""The diagnostics stage of the rank sweep, written to ``runs/<sweep>/diagnostics.json``.

Every finished arm is read out on the same decision points (seeded fair-oracle episodes of the first evaluated
env with a closed set of choices): KL against the base and against the same seed's full fine-tune, the logit-lens
decision margin per layer and per group, and the counterfactual flip rate. The full update's spectrum (energy
share within the top r) is computed per seed, and each LoRA arm's actual update is set beside it.
Arms already in ``diagnostics.json`` are not recomputed; a diagnostic that fails is recorded, not raised.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import numpy as np

from fairgym.envs import keys
from fairgym.envs.records import step_info
from fairgym.runfiles import DIAGNOSTICS_FILE, read_json, write_json
from fairgym.training.sweep_arms import Arm, load_arm_model, make_llm_agent
from fairgym.training.sweep_config import SweepConfig
from fairgym.training.sweep_folder import read_status


def decision_points(config: SweepConfig) -> dict[str, Any]:
    """Observations and infos of seeded fair-oracle decisions, evenly spread over the episodes."""
    from fairgym.agents import make_agent
    from fairgym.agents.runner import run_episodes

    env_id = next((e for e in config.eval.envs if config.eval.decide_mode(e) == "choice"), None)
    if env_id is None:
        raise ValueError("diagnostics need an evaluated env with a closed set of choices (e.g. Lending).")
    episodes = run_episodes(env_id, make_agent("fair-oracle"), episodes=config.diagnostics.episodes,
                            seed=config.eval.seed, env_kwargs=config.eval.env_kwargs.get(env_id) or {},
                            num_envs=config.eval.num_envs, progress=False)
    steps = [s for ep in episodes for s in ep["steps"] if s.get(keys.CHOICES)]
    if not steps:
        raise ValueError(f"diagnostics found no decision with choices in {config.diagnostics.episodes} episodes of "
                         f"{env_id}; raise diagnostics.episodes or the env's max_steps.")
    keep = np.unique(np.linspace(0, len(steps) - 1, min(config.diagnostics.decisions, len(steps))).astype(int))
    steps = [steps[i] for i in keep]
    infos = [step_info(s) for s in steps]
    return {"env_id": env_id, "observations": [s["observation"] for s in steps], "infos": infos,
            "groups": list(episodes[0]["groups"]), "choices": list(steps[0][keys.CHOICES])}


def render_prompts(model: Any, tokenizer: Any, points: dict[str, Any]) -> list[str]:
    """The prompts exactly as the LLM agent renders them for these decisions."""
    from fairgym.lm.generation import context_window
    from fairgym.lm.prompting import build_messages, render_prompt

    window = context_window(model)
    return [render_prompt(tokenizer, build_messages(o, i), window - 8)[0]
            for o, i in zip(points["observations"], points["infos"], strict=True)]


def lens_summary(lens: np.ndarray, groups_of_points: list[str], groups: list[str],
                 paired: dict[str, Any] | None = None) -> dict[str, Any]:
    """Mean margin per layer overall and per group, and the group gap per layer: ``paired`` (each state minus its
    descriptor-swapped twin, ``fairgym.analysis.residue.paired_logit_lens``) when given. The per-group means compare
    different states, so their difference mixes group with score; it is kept only as ``per_group``."""
    per_group = {g: lens[:, [i for i, x in enumerate(groups_of_points) if x == g]].mean(axis=1).tolist()
                 for g in groups if g in groups_of_points}
    return {"mean": lens.mean(axis=1).tolist(), "per_group": per_group,
            "group_gap": paired["mean"] if paired else None, "group_gap_pairs": paired["n"] if paired else 0}


def arm_diagnostics(config: SweepConfig, name: str, model: Any, tokenizer: Any, ctx: dict[str, Any],
                    full: Any | None) -> dict[str, Any]:
    """KL vs base (and vs full), logit lens and flip rate for one loaded arm."""
    from fairgym.analysis import diagnostics as D

    points, prompts, bs = ctx["points"], ctx["prompts"], config.diagnostics.batch_size
    out: dict[str, Any] = {}
    logits = D.decision_logits(model, tokenizer, prompts, bs)[0]
    out["kl_vs_base"] = D.kl_from_logits(_cached_logits(ctx, "base", ctx["base"], tokenizer, bs), logits)
    if full is not None and full is not model:
        out["kl_vs_full"] = D.kl_from_logits(_cached_logits(ctx, "full", full, tokenizer, bs), logits)
    lens = D.logit_lens(model, tokenizer, prompts, choices=points["choices"][:2], batch_size=bs)
    from fairgym.analysis.residue import DecisionState, paired_logit_lens

    states = [DecisionState(o, i) for o, i in zip(points["observations"], points["infos"], strict=True)]
    pair_groups = [points["groups"][0], points["groups"][-1]]
    paired = paired_logit_lens(model, tokenizer, [s for s in states if s.group in pair_groups], pair_groups, bs)
    out["logit_lens"] = lens_summary(lens, [i.get(keys.GROUP) for i in points["infos"]], points["groups"], paired)
    agent = make_llm_agent(config, model, tokenizer, name, "choice")
    out["flip_rate"] = D.counterfactual_flip_rate(agent, points["observations"], points["infos"], points["groups"])
    return out


def _cached_logits(ctx: dict[str, Any], key: str, model: Any, tokenizer: Any, batch_size: int) -> Any:
    """Decision logits of a reference model (base, full), computed once per diagnostics run."""
    from fairgym.analysis import diagnostics as D

    cache = ctx.setdefault("logits", {})
    if cache.get(key) is None or cache[key][0] is not model:
        cache[key] = (model, D.decision_logits(model, tokenizer, ctx["prompts"], batch_size)[0])
    return cache[key][1]


def spectrum_ranks(config: SweepConfig) -> list[int]:
    """Ranks for the energy curve: the configured ones, else powers of two up to the largest swept rank."""
    if config.diagnostics.spectrum_ranks:
        return sorted(set(config.diagnostics.spectrum_ranks))
    top = max(config.ranks)
    return sorted({2**k for k in range(int(np.log2(top)) + 2)} | set(config.ranks))


def _guard(record: dict[str, Any], key: str, fn: Any, *args: Any) -> Any:
    """Run ``fn(*args)`` into ``record[key]``; a failure is recorded as ``{"error", "traceback"}``."""
    try:
        record[key] = fn(*args)
    except Exception as exc:  # noqa: BLE001 - a diagnostic must not sink the sweep
        record[key] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        print(f"[sweep] diagnostic {key} failed: {record[key]['error']}", flush=True)
    return record[key]


def _lora_update(ctx: dict[str, Any], model: Any, arm: Arm, full_deltas: dict[str, Any] | None) -> dict[str, Any]:
    from fairgym.analysis import diagnostics as D

    rank = int(arm.rank or 0)
    own = D.lora_update(ctx["base"], model, ranks=[rank])
    out = {"rank": rank, "norm": float(np.sqrt(sum(m["energy"] for m in own["matrices"].values())))}
    if full_deltas:
        cmp = D.compare_updates(full_deltas, own["deltas"], rank)
        out.update({k: v for k, v in cmp.items() if k != "matrices"})
    return out


def _intruders(config: SweepConfig, model: Any) -> dict[str, Any]:
    from fairgym.analysis import diagnostics as D

    return D.intruder_dimensions(model, top_k=config.diagnostics.intruder_top_k,
                                 threshold_epsilon=config.diagnostics.intruder_epsilon)


def _full_block(config: SweepConfig, ctx: dict[str, Any], result: dict[str, Any], seed: int,
                arms: list[Arm], sweep_dir: Path) -> tuple[Any | None, dict[str, Any] | None]:
    """Load the seed's full arm (when done), diagnose it and its spectrum; returns (model, deltas)."""
    from fairgym.analysis import diagnostics as D

    full_arm = next((a for a in arms if a.method == "full" and a.seed == seed), None)
    status = read_status(sweep_dir / full_arm.name) if full_arm else {}
    if full_arm is None or status.get("state") != "done":
        return None, None
    model, tokenizer = load_arm_model(config, status["weights"], sweep_dir)
    if _needs_diagnosis(result["arms"].get(full_arm.name), None):
        _guard(result["arms"], full_arm.name, arm_diagnostics, config, full_arm.name, model, tokenizer, ctx, None)
    deltas = D.state_deltas(ctx["base_state"], model.state_dict())
    if config.diagnostics.update_spectrum and _stale_spectrum(result["spectrum"].get(str(seed)), config):
        _guard(result["spectrum"], str(seed), D.delta_spectrum, deltas, spectrum_ranks(config), 32)
    return model, deltas


def _stale_spectrum(entry: dict[str, Any] | None, config: SweepConfig) -> bool:
    """Missing, failed, or computed at other ranks than the config's (e.g. a rank added on a rerun)."""
    return not entry or "error" in entry or entry.get("ranks") != spectrum_ranks(config)


def _context(config: SweepConfig, base_model: str | None) -> dict[str, Any]:
    from fairgym.lm.models import load_model

    points = decision_points(config)
    base, tokenizer = load_model(base_model, device=config.device, dtype=config.dtype)
    state = {k: v.detach().cpu().clone() for k, v in base.state_dict().items()}
    return {"points": points, "base": base, "tokenizer": tokenizer, "base_state": state,
            "prompts": render_prompts(base, tokenizer, points)}


def _needs_diagnosis(entry: dict[str, Any] | None, full: Any | None) -> bool:
    """Missing, failed, or diagnosed before its seed's full arm was done (no ``kl_vs_full``): diagnose again."""
    if not entry or "error" in entry or any(isinstance(v, dict) and "error" in v for v in entry.values()):
        return True
    return full is not None and "kl_vs_full" not in entry


def run_diagnostics(config: SweepConfig, sweep_dir: Path, arms: list[Arm], base_model: str | None) -> dict[str, Any]:
    """Diagnose every finished arm; merge into and return ``diagnostics.json``."""
    path = sweep_dir / DIAGNOSTICS_FILE
    result = read_json(path, {})
    result.setdefault("arms", {})
    result.setdefault("spectrum", {})
    ctx = _context(config, base_model)
    result.update({"env_id": ctx["points"]["env_id"], "choices": ctx["points"]["choices"],
                   "groups": ctx["points"]["groups"], "decisions": len(ctx["prompts"]),
                   "spectrum_ranks": spectrum_ranks(config)})
    if _needs_diagnosis(result["arms"].get("base"), None):
        _guard(result["arms"], "base", arm_diagnostics, config, "base", ctx["base"], ctx["tokenizer"], ctx, None)
    for seed in config.seeds:
        full, full_deltas = _full_block(config, ctx, result, seed, arms, sweep_dir)
        for arm in (a for a in arms if a.method == "lora" and a.seed == seed
                    and _needs_diagnosis(result["arms"].get(a.name), full)):
            status = read_status(sweep_dir / arm.name)
            if status.get("state") != "done":
                continue
            model, tokenizer = load_arm_model(config, status["weights"], sweep_dir)
            record: dict[str, Any] = {}
            _guard(record, "diag", arm_diagnostics, config, arm.name, model, tokenizer, ctx, full)
            _guard(record, "update", _lora_update, ctx, model, arm, full_deltas)
            if config.diagnostics.intruders:
                _guard(record, "intruders", _intruders, config, model)
            result["arms"][arm.name] = {**(record["diag"] if "error" not in record["diag"] else record),
                                        **{k: v for k, v in record.items() if k != "diag"}}
            del model
        write_json(path, result, indent=1)
    write_json(path, result, indent=1)
    return result
