"""A sweep folder: what a rerun may change, the arms' status files, where their weights are, the implant cache.

A rerun in a folder that already holds a sweep is checked against the saved config before anything runs
(``check_sweep_folder``): any difference in a field that changes results (model, implant, recipe, train, the
learning-rate rule, eval, diagnostics settings) is refused, naming the fields. The fields a rerun may change are
derived from each field's declared role (``fairgym.config.role``): which arms exist (``ranks``, ``seeds`` after
the first, ``variants``, ``include_base``, ``include_full``), whether the diagnostics stage runs, how runs log
(``wandb_project``, ``train.report_to``/``logging_steps``/``save_steps``/``run_name``/``eval_every``/
``eval_episodes``), the report's verdict thresholds (``eval.collapse_margin``, ``eval.min_agreement``), where the
stages run (``executor``: a sweep started on one executor resumes on another) and settings a stage checks against
what it wrote and redoes on change (``residue.lambdas``/``calibrate``: new doses recalibrate, reusing full's and the
base's measures).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from fairgym.config import (
    ARMS,
    EXECUTION,
    LOGGING,
    RECHECKED,
    REPORT,
    STAGE,
    fields_with_role,
    from_dict,
    load_saved_config,
)
from fairgym.runfiles import CONFIG_FILE, STATUS_FILE, read_json, write_json
from fairgym.training.config import TrainConfig
from fairgym.training.sweep_config import ARM_FIELDS, SweepConfig

TRAIN_LOGGING_FIELDS = fields_with_role(TrainConfig, (LOGGING,))
# Dotted config fields a rerun may change (see the module doc), from the fields' declared roles.
RESULT_FREE_FIELDS = (fields_with_role(SweepConfig, (ARMS, LOGGING, REPORT, STAGE, EXECUTION, RECHECKED))
                      | {f"{block}.{name}" for block in ("train", "implant") for name in TRAIN_LOGGING_FIELDS})


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def result_fields(config: SweepConfig) -> dict[str, Any]:
    """The config as dotted fields, ``implant`` resolved to full ``TrainConfig`` fields (so an explicit default
    equals an omitted one), plus the seed the learning rates are selected on."""
    data = dataclasses.asdict(config)
    data.pop("implant")
    data["train"] = {k: v for k, v in data["train"].items() if k not in ARM_FIELDS}
    if config.implant:
        data["implant"] = {k: v for k, v in dataclasses.asdict(config.implant_config("-")).items()
                           if k != "output_dir"}
    data["lr_selection"]["train_seed"] = config.seeds[0]
    return _flatten(data)


def sweep_config_differences(saved: SweepConfig, current: SweepConfig) -> dict[str, tuple[Any, Any]]:
    """Result-changing fields whose saved value differs from ``current``: dotted name -> (saved, now)."""
    old, new = result_fields(saved), result_fields(current)
    names = sorted((set(old) | set(new)) - RESULT_FREE_FIELDS)
    return {n: (old.get(n), new.get(n)) for n in names if old.get(n) != new.get(n)}


def check_sweep_folder(config: SweepConfig, sweep_dir: Path) -> None:
    """Refuse a folder whose saved ``config.yaml`` describes a sweep with other results (before anything runs).

    Raises:
        ValueError: naming every differing field with its saved and current value.
    """
    path = Path(sweep_dir) / CONFIG_FILE
    if not path.exists():
        return
    data = load_saved_config(SweepConfig, path)  # refuses a folder saved at another schema version
    try:
        saved = from_dict(SweepConfig, data)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path} holds a sweep config this version cannot read ({exc}); use another --out or "
                         "name.") from exc
    diffs = sweep_config_differences(saved, config)
    if diffs:
        listed = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in diffs.items())
        raise ValueError(f"{sweep_dir} holds sweep {saved.name!r} run with other settings ({listed}); its finished "
                         "arms would be mixed with new ones. Use another name= or --out, or the saved values.")



# ---- the implant's cache folder ----------------------------------------------------------------------------
def implant_dir(config: SweepConfig, sweep_dir: Path) -> Path:
    """``sweep_dir/implant-<key>``: the implant's cache folder, keyed by every setting that shapes the implant.

    Only settings that differ from ``TrainConfig``'s defaults enter the key, so a new field with a default that
    keeps old behaviour leaves existing caches valid."""
    defaults = dataclasses.asdict(TrainConfig())
    fields = {k: v for k, v in dataclasses.asdict(config.implant_config("-")).items()
              if k not in {"output_dir", *TRAIN_LOGGING_FIELDS} and v != defaults[k]}
    key = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return Path(sweep_dir) / f"implant-{key}"


# ---- status files and weights ---------------------------------------------------------------------------------
def read_status(arm_dir: Path) -> dict[str, Any]:
    """The arm's ``status.json`` (``{"state": "pending"}`` when absent)."""
    return read_json(Path(arm_dir) / STATUS_FILE, {"state": "pending"})


def write_status(arm_dir: Path, **fields: Any) -> None:
    """Write ``status.json`` atomically."""
    write_json(Path(arm_dir) / STATUS_FILE, fields)


def locate_weights(path: str | None, sweep_dir: Path | None) -> str | None:
    """A weights path from a status or learning-rate file, found from any working directory.

    Paths are recorded as the run wrote them (relative to its working directory when ``--out`` was relative, e.g.
    ``runs/<sweep>/lora-r8-s0/train/adapter``); a rerun from elsewhere finds them under ``sweep_dir`` by the part
    after the sweep folder's name. Anything else (absolute, found as is, a hub or ``embedded:`` name) is returned
    unchanged, so a missing folder is still named by the loader."""
    if path is None or sweep_dir is None:
        return path
    p = Path(path)
    if p.is_absolute() or p.exists() or Path(sweep_dir).name not in p.parts:
        return path
    after = p.parts[len(p.parts) - p.parts[::-1].index(Path(sweep_dir).name):]
    candidate = Path(sweep_dir).joinpath(*after)
    return str(candidate) if candidate.exists() else path
