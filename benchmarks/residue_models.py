"""The models a residue calibration measures between: an implanted (biased) base and a debiased full fine-tune.

``prepare(family, out)`` builds them once and caches them under ``out`` (a rerun reuses what is there):

- Lending: ``configs/sweeps/demo.yaml``: its ``implant:`` block (the biased teacher denies every Black applicant,
  approves every white one), then a full debias arm with the demo's ``train`` block (fair-oracle SFT with
  counterfactual copies, full, 1e-4, 24 steps), and a LoRA arm (rank 1 at 1e-3, the demo's LoRA rule) whose
  residue the calibration states as a lambda-equivalent;
- Dialogue: ``configs/sweeps/cpu-study.yaml``'s ``dialogue`` block: the hostile implant, then a full detox arm
  (1e-4, the rate the study's grid chose for full) and a LoRA arm (rank 1 at 1e-3).

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

from fairgym.training.sweep_plan import SweepConfig, implant_dir, implant_train_config, load_sweep_configs

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = {
    "lending": {"config": ROOT / "configs" / "sweeps" / "demo.yaml", "part": None, "full_lr": 1e-4, "steps": 24},
    "dialogue": {"config": ROOT / "configs" / "sweeps" / "cpu-study.yaml", "part": "dialogue", "full_lr": 1e-4,
                 "steps": 24},
}
LORA_RANK, LORA_LR = 1, 1e-3


def sweep_config(family: str) -> SweepConfig:
    """The sweep config whose implant and train blocks the calibration uses (one seed, the CPU device)."""
    spec = FAMILIES[family]
    configs = load_sweep_configs(spec["config"], ["device=cpu", "seeds=[0]"])
    return next(c for c in configs if spec["part"] is None or c.name.endswith(f"-{spec['part']}"))


def _implant(config: SweepConfig, out: Path) -> Path:
    from fairgym.training.implant import implant_bias

    target = implant_dir(config, out)
    if (target / "model" / "config.json").exists():
        return target / "model"
    return implant_bias(dataclasses.replace(implant_train_config(config, target), report_to="none"))


def _arm(config: SweepConfig, family: str, out: Path, base: Path, method: str) -> Path:
    spec = FAMILIES[family]
    lr = spec["full_lr"] if method == "full" else LORA_LR
    rank = 1 if method == "full" else LORA_RANK
    folder = out / (f"full-lr{lr:g}" if method == "full" else f"lora-r{rank}-lr{lr:g}")
    final = folder / ("model" if method == "full" else "adapter")
    if (final / "config.json").exists() or (final / "adapter_config.json").exists():
        return final
    from fairgym.training import trainers

    train = config.train_config(method=method, rank=rank, seed=0, output_dir=folder, model=str(base), learning_rate=lr)
    train = dataclasses.replace(train, max_steps=spec["steps"], report_to="none", save_steps=10_000)
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
    """Build (or reuse) the implanted base, the full arm and the LoRA arm of ``family`` under ``out/family``.

    Returns:
        ``{"config", "base", "full", "lora", "seconds": {stage: seconds it took to build}}``; the seconds of a
        stage built by an earlier call are read back from ``build_seconds.json`` in the folder.
    """
    config = sweep_config(family)
    folder = Path(out) / family
    record = folder / "build_seconds.json"
    seconds = json.loads(record.read_text()) if record.exists() else {}
    spec = FAMILIES[family]
    base = _timed(seconds, "implant", lambda: _implant(config, folder), implant_dir(config, folder) / "model")
    full = _timed(seconds, "train_full", lambda: _arm(config, family, folder, base, "full"),
                  folder / f"full-lr{spec['full_lr']:g}" / "model")
    lora = _timed(seconds, "train_lora", lambda: _arm(config, family, folder, base, "lora"),
                  folder / f"lora-r{LORA_RANK}-lr{LORA_LR:g}" / "adapter")
    record.write_text(json.dumps(seconds, indent=1))
    return {"config": config, "base": base, "full": full, "lora": lora, "seconds": seconds}


if __name__ == "__main__":
    for name in sys.argv[1:] or list(FAMILIES):
        made = prepare(name, ROOT / "runs" / "residue-calibration")
        print(name, {k: str(v) for k, v in made.items() if k != "config"}, flush=True)
