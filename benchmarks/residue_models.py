"""The models a residue calibration measures between: an implanted (biased) base and a debiased full fine-tune.

``prepare(family, out)`` builds them once and caches them under ``out`` (a rerun reuses what is there):

- Lending: ``configs/sweeps/demo.yaml``: its ``implant:`` block (the biased teacher denies every Black applicant,
  approves every white one), then a full debias arm with the demo's ``train`` block (fair-oracle SFT with
  counterfactual copies, full, 1e-4, 24 steps), a LoRA arm (rank 1 at 1e-3 with alpha 2r, the demo's rule when this
  was measured) whose
  residue the calibration states as a lambda-equivalent, and the full arm again with training seed 1 (how far two
  full fine-tunes differ: the floor below which a residue cannot be told from training noise);
- Dialogue: ``configs/sweeps/cpu-study.yaml``'s ``dialogue`` block: the hostile implant, then a full detox arm
  (1e-4, the rate the study's grid chose for full), a LoRA arm (rank 1 at 1e-3) and full with seed 1.

Used by ``benchmarks/residue_calibration.py``; ``python benchmarks/residue_models.py lending`` builds them alone.
"""

from __future__ import annotations

from fairgym.threads import configure_threads

configure_threads()  # before torch loads

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from fairgym.training.sweep_config import SweepConfig, load_sweep_configs
from fairgym.training.sweep_folder import implant_dir

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = {
    "lending": {"config": ROOT / "configs" / "sweeps" / "demo.yaml", "part": None, "full_lr": 1e-4, "steps": 24},
    "dialogue": {"config": ROOT / "configs" / "sweeps" / "cpu-study.yaml", "part": "dialogue", "full_lr": 1e-4,
                 "steps": 24},
}
LORA_RANK, LORA_LR = 1, 1e-3


def sweep_config(family: str) -> SweepConfig:
    """The sweep config whose implant and train blocks the calibration uses (one seed, the CPU device, LoRA's
    alpha pinned to 2r: the parametrization the committed calibration was measured with)."""
    spec = FAMILIES[family]
    configs = load_sweep_configs(spec["config"], ["device=cpu", "seeds=[0]", "train.alpha=2r"])
    return next(c for c in configs if spec["part"] is None or c.name.endswith(f"-{spec['part']}"))


def _implant(config: SweepConfig, out: Path) -> Path:
    from fairgym.training.implant import implant_bias

    target = implant_dir(config, out)
    if (target / "model" / "config.json").exists():
        return target / "model"
    return implant_bias(dataclasses.replace(config.implant_config(target), report_to="none"))


def arm_folder(family: str, out: Path, method: str, seed: int = 0) -> Path:
    """Where an arm of ``family`` is trained: ``full-lr1e-4`` / ``lora-r1-lr0.001`` (``-s<seed>`` after seed 0)."""
    lr = FAMILIES[family]["full_lr"] if method == "full" else LORA_LR
    name = f"full-lr{lr:g}" if method == "full" else f"lora-r{LORA_RANK}-lr{lr:g}"
    return Path(out) / family / (name + (f"-s{seed}" if seed else ""))


def _arm(config: SweepConfig, family: str, out: Path, base: Path, method: str, seed: int = 0) -> Path:
    folder = arm_folder(family, out, method, seed)
    final = folder / ("model" if method == "full" else "adapter")
    if (final / "config.json").exists() or (final / "adapter_config.json").exists():
        return final
    from fairgym.training import trainers

    lr = FAMILIES[family]["full_lr"] if method == "full" else LORA_LR
    rank = 1 if method == "full" else LORA_RANK
    train = config.arm_config(method=method, rank=rank, seed=seed, output_dir=folder, model=str(base),
                              learning_rate=lr)
    train = dataclasses.replace(train, max_steps=FAMILIES[family]["steps"], report_to="none", save_steps=10_000)
    result = trainers.train(train)
    return result.model_dir if method == "full" else result.adapter_dir


def _timed(seconds: dict[str, float], stage: str, build: Any, done: Path) -> Path:
    """Run ``build()`` and record its seconds under ``stage`` unless its result ``done`` already existed."""
    cached = done.exists()
    started = time.perf_counter()
    path = build()
    if not cached:
        seconds[stage] = round(time.perf_counter() - started, 1)
    return path


def prepare(family: str, out: Path) -> dict[str, Any]:
    """Build (or reuse) the implanted base, the full arm, the LoRA arm and a second full arm (training seed 1: the
    noise floor a residue must exceed) of ``family`` under ``out/family``.

    Returns:
        ``{"config", "base", "full", "lora", "full_s1", "seconds": {stage: seconds it took to build}}``; the
        seconds of a stage built by an earlier call are read back from ``build_seconds.json`` in the folder.
    """
    config = sweep_config(family)
    folder = Path(out) / family
    record = folder / "build_seconds.json"
    seconds = json.loads(record.read_text()) if record.exists() else {}
    base = _timed(seconds, "implant", lambda: _implant(config, folder), implant_dir(config, folder) / "model")
    paths = {"config": config, "base": base}
    for key, method, seed in (("full", "full", 0), ("lora", "lora", 0), ("full_s1", "full", 1)):
        done = arm_folder(family, out, method, seed) / ("model" if method == "full" else "adapter")
        paths[key] = _timed(seconds, f"train_{key}", lambda m=method, s=seed: _arm(config, family, out, base, m, s),
                            done)
    record.write_text(json.dumps(seconds, indent=1))
    return {**paths, "seconds": seconds}


if __name__ == "__main__":
    for name in sys.argv[1:] or list(FAMILIES):
        made = prepare(name, ROOT / "runs" / "residue-calibration")
        print(name, {k: str(v) for k, v in made.items() if k != "config"}, flush=True)
