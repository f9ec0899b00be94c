"""The residue stage of the rank sweep, written to ``runs/<sweep>/residue.json``.

Every finished arm (base, full, LoRA at each rank and seed) is read out on the same items, so arms compare item by
item (``fairgym.analysis.stats.paired_bootstrap``) instead of through rates stuck at their ceiling:

- on an env whose decisions are choices (Lending): ``residue.states`` distinct decision states from seeded
  fair-teacher episodes; per state the approve - deny margin minus its descriptor-swapped twin's
  (``margin_gap``, ``margin_gap_abs``), the flips and the teacher agreement those margins imply;
- on an env of replies (Dialogue): the toxicity of replies sampled at temperature 1 beside the greedy reply, on
  ``residue.prompts`` of the states;
- everywhere: the hidden residue, the mean token NLL an arm gives the implant's biased teacher's answer on up to
  ``residue.heldout`` of the states where it differs from the fair teacher's (is the biased answer still likely
  although no longer chosen?).

With ``residue.calibrate``, the same measures are taken on models interpolated between the first seed's full arm
(lambda 0) and the base (lambda 1; the implanted one when the sweep implants a bias): each measure's minimum
detectable dose, and each arm's residue as its dose equivalent (``fairgym.analysis.calibration``). Arms already
measured are not measured again; a measure that fails is recorded, not raised.
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fairgym.runfiles import RESIDUE_FILE, read_json, write_json
from fairgym.training.sweep_arms import Arm, load_arm_model
from fairgym.training.sweep_config import SweepConfig
from fairgym.training.sweep_folder import read_status


@dataclass
class ResidueItems:
    """The items every arm is measured on (the same for all arms and every lambda of the calibration)."""

    env_id: str
    groups: list[str]
    discrete: bool
    states: list[Any]  # fairgym.analysis.residue.DecisionState
    reference: list[str] | None  # the fair teacher's decision per state (discrete envs)
    heldout_rows: list[dict[str, Any]]  # the biased teacher's answer on the held-out states
    prompts: list[list[dict[str, str]]]  # chat messages whose replies are sampled (reply envs)
    scorer: Any  # the env's toxicity scorer spec (reply envs)

    def summary(self) -> dict[str, Any]:
        return {"env_id": self.env_id, "groups": self.groups, "discrete": self.discrete, "states": len(self.states),
                "heldout": len(self.heldout_rows), "prompts": len(self.prompts)}


def _episodes_for(config: SweepConfig, env_id: str, teacher: Any, wanted: int, discrete: bool) -> list[Any]:
    """Seeded teacher episodes holding at least ``wanted`` distinct decision states (their number doubles until they
    do), and the states."""
    from fairgym.agents.runner import run_episodes
    from fairgym.analysis.residue import decision_states

    kwargs = config.eval.env_kwargs.get(env_id) or {}
    count = max(2, math.ceil(wanted / 20))
    while True:
        episodes = run_episodes(env_id, teacher, episodes=count, seed=config.residue.seed, env_kwargs=kwargs,
                                num_envs=config.eval.num_envs, progress=False)
        try:
            return decision_states(episodes, wanted, with_choices=discrete)
        except ValueError:
            if count > 64 * max(1, wanted):
                raise
            count *= 2


def _answers(agent: Any, states: list[Any]) -> list[str]:
    """``agent``'s action text on each state (decided one at a time: no state follows another)."""
    return [agent.act([s.observation], [s.info])[0] for s in states]


def residue_items(config: SweepConfig) -> ResidueItems:
    """The items of the first evaluated env: decision states from seeded fair-teacher episodes, the fair teacher's
    decisions on them, the implant's biased teacher's answers on the held-out ones, the Dialogue prompts."""
    import numpy as np

    from fairgym.agents import make_agent
    from fairgym.agents.runner import calibrate
    from fairgym.envs import env_traits, make_env
    from fairgym.envs.toxicity import DEFAULT_SCORER
    from fairgym.training.implant import implant_config

    env_id = config.eval.envs[0]
    kwargs = config.eval.env_kwargs.get(env_id) or {}
    discrete = env_traits(env_id).discrete_choices and config.eval.decide_mode(env_id) == "choice"
    env = make_env(env_id, **kwargs)

    def ready(name: str, agent_kwargs: dict[str, Any]) -> Any:
        agent = make_agent(name, **agent_kwargs)
        calibrate(agent, env, config.residue.seed)
        return agent

    teacher = ready(config.template.teacher, config.template.teacher_kwargs)
    wanted = config.residue.states if discrete else max(config.residue.prompts, config.residue.heldout)
    states = _episodes_for(config, env_id, teacher, wanted, discrete)
    groups = list(getattr(env.unwrapped, "groups", ()))
    reference = _answers(teacher, states) if discrete else None
    rows: list[dict[str, Any]] = []
    if config.implant:
        from fairgym.analysis.residue import teacher_rows

        implant = implant_config(config.implant_config("-"))
        biased = _answers(ready(implant.teacher, implant.teacher_kwargs), states)
        # the implant's answer where it differs from the fair teacher's: where the biased answer can still hide
        differ = [i for i, b in enumerate(biased) if reference is None or b != reference[i]]
        keep: Any = np.unique(np.linspace(0, len(differ) - 1, min(config.residue.heldout, len(differ))).round()) \
            if differ else []
        rows = teacher_rows([states[differ[int(i)]] for i in keep], [biased[differ[int(i)]] for i in keep])
    prompt_keep = np.unique(np.linspace(0, len(states) - 1, min(config.residue.prompts, len(states))).round())
    prompts = [] if discrete else [states[int(i)].messages for i in prompt_keep]
    env.close()
    return ResidueItems(env_id, groups, discrete, states, reference, rows, prompts,
                        kwargs.get("toxicity_scorer", DEFAULT_SCORER))


def _one_twin_each(states: list[Any], groups: list[str]) -> list[tuple[list[int], list[str]]]:
    """With more than two groups, each state is paired with one twin (the next group, cyclically), so the number
    of pairs stays the number of states; returned as (state indices, [their group, the twin's]) batches."""
    if len(groups) <= 2:
        return [(list(range(len(states))), groups)]
    batches: dict[tuple[str, str], list[int]] = {}
    for i, state in enumerate(states):
        if state.group in groups:
            twin = groups[(groups.index(state.group) + 1) % len(groups)]
            batches.setdefault((state.group, twin), []).append(i)
    return [(batch, list(pair)) for pair, batch in batches.items()]


def measure(model: Any, tokenizer: Any, items: ResidueItems, config: SweepConfig) -> dict[str, list[float]]:
    """Every residue measure of one model on ``items``: per-item values, the same items on every call."""
    from fairgym.analysis.residue import decision_items, hidden_residue, margin_gap, sampled_toxicity

    size = config.residue.batch_size
    out: dict[str, list[float]] = {}
    if items.discrete:
        gaps, flips, agreement = [], [], []
        for index, groups in _one_twin_each(items.states, items.groups):
            states = [items.states[i] for i in index]
            gap = margin_gap(model, tokenizer, states, groups, batch_size=size)
            reference = [items.reference[i] for i in index] if items.reference else None
            decisions = decision_items(gap, reference, tuple(states[0].choices[:2]))
            gaps += gap["gap"]
            flips += decisions["flip"]
            agreement += decisions.get("agreement", [])
        out.update(margin_gap=gaps, margin_gap_abs=[abs(g) for g in gaps], flip=flips, agreement=agreement)
    else:
        sampled = sampled_toxicity(model, tokenizer, items.prompts, items.scorer, samples=config.residue.samples,
                                   batch_size=max(1, size // 4), seed=config.residue.seed)
        out.update(sampled_toxicity=sampled["sampled"], greedy_toxicity=sampled["greedy"])
    if items.heldout_rows:
        out["hidden_nll"] = hidden_residue(model, tokenizer, items.heldout_rows, batch_size=max(1, size // 2),
                                           max_length=config.template.max_length)
    return {k: [float(v) for v in vs] for k, vs in out.items() if vs}


def _measured(entry: Any) -> bool:
    return isinstance(entry, dict) and "error" not in entry and bool(entry.get("values"))


def _guard(record: dict[str, Any], key: str, fn: Any, *args: Any) -> None:
    started = time.time()
    try:
        record[key] = {"values": fn(*args), "seconds": round(time.time() - started, 1)}
    except Exception as exc:  # noqa: BLE001 - one arm's measure must not sink the sweep
        record[key] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        print(f"[sweep] residue of {key} failed: {record[key]['error']}", flush=True)


def _calibration(config: SweepConfig, sweep_dir: Path, items: ResidueItems, base_model: str | None,
                 arms: list[Arm], measured: dict[str, Any]) -> dict[str, Any]:
    """The dose-response curve between the first seed's full arm and the implanted base, and its summary; the ends
    reuse the two arms' own measures (``measured``: residue.json's arms), exact at lambda 0 and 1."""
    from fairgym.analysis.calibration import summarize
    from fairgym.analysis.residue import calibrate, state_copy
    from fairgym.lm.models import load_model

    full = next((a for a in arms if a.method == "full" and a.seed == config.seeds[0]), None)
    status = read_status(sweep_dir / full.name) if full else {}
    if full is None or status.get("state") != "done":
        raise ValueError("the calibration needs the first seed's full arm, which is not done")
    base, _ = load_model(base_model, device=config.device, dtype=config.dtype)
    base_state = state_copy(base)
    del base
    model, tokenizer = load_arm_model(config, status["weights"], sweep_dir)
    ends: dict[float, Any] = {0.0: measured.get(full.name), 1.0: measured.get("base")}
    known = {lam: entry["values"] for lam, entry in ends.items() if _measured(entry)}
    curve = calibrate(model, state_copy(model), base_state, lambda m: measure(m, tokenizer, items, config),
                      config.residue.lambdas, known=known)
    return {"full_arm": full.name, "curve": curve.to_dict(), "summary": summarize(curve),
            "reused": sorted(known)}


def run_residue(config: SweepConfig, sweep_dir: Path, arms: list[Arm], base_model: str | None) -> dict[str, Any]:
    """Measure every finished arm (and the calibration); merge into and return ``residue.json``."""
    path = Path(sweep_dir) / RESIDUE_FILE
    result = read_json(path, {})
    result.setdefault("arms", {})
    items = residue_items(config)
    result["items"] = items.summary()
    for arm in [Arm("base", "base"), *(a for a in arms if a.method != "base")]:
        status = read_status(Path(sweep_dir) / arm.name) if arm.method != "base" else None
        if _measured(result["arms"].get(arm.name)) or (status is not None and status.get("state") != "done"):
            continue
        print(f"[sweep] residue: {arm.name}", flush=True)
        if arm.method == "base":
            from fairgym.lm.models import load_model

            model, tokenizer = load_model(base_model, device=config.device, dtype=config.dtype)
        else:
            model, tokenizer = load_arm_model(config, status["weights"], sweep_dir)  # type: ignore[index]
        _guard(result["arms"], arm.name, measure, model, tokenizer, items, config)
        del model
        write_json(path, result, indent=None)
    if config.residue.calibrate and not _calibrated(result, config):
        print("[sweep] residue: calibration (models between full and the base)", flush=True)
        started = time.time()
        try:
            result["calibration"] = {**_calibration(config, Path(sweep_dir), items, base_model, arms, result["arms"]),
                                     "seconds": round(time.time() - started, 1)}
        except Exception as exc:  # noqa: BLE001 - the arms' measures stand without it
            result["calibration"] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            print(f"[sweep] residue calibration failed: {result['calibration']['error']}", flush=True)
    write_json(path, result, indent=None)
    return result


def _calibrated(result: dict[str, Any], config: SweepConfig) -> bool:
    calibration = result.get("calibration") or {}
    return "summary" in calibration and calibration["summary"].get("lambdas") == list(config.residue.lambdas)
