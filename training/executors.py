"""Executors: how a sweep's stages run. The sweep plans its stages (``fairgym.training.sweep.sweep_stages``); an
executor runs that plan, so both executors run the same stage functions on the same arguments.

A ``Stage`` is a module-level function with its arguments, the stages whose results it takes (``inputs``) or must
wait for (``after``), what it reserves on a cluster (``Resources``) and, for a stage whose loss the sweep survives
(an arm), how a lost run is recorded (``lost``). The plan lists every stage after the stages it needs.
``fairgym.training.sweep.make_executor`` picks the executor ``SweepConfig.executor`` names:

- ``LocalExecutor`` (the default, no Ray): every stage in this process, in plan order.
- ``RayExecutor`` (``fairgym.training.ray_executor``, ``pip install 'fairgym[ray]'``): every stage a Ray task,
  submitted once the stages it needs have finished, with its CPUs and GPUs; Ray runs a stage again when its worker
  dies (``max_retries``), and each stage resumes from what it wrote.

Which process writes what: the process that calls ``run_sweep`` holds the sweep folder's lock (``fairgym.locks``)
for the whole sweep, keeping a second sweep out of the folder, and writes ``config.yaml``; each stage writes only
its own files (an arm its own folder, under that folder's lock in the process that runs it; its training the
``train/`` folder inside, under that folder's lock). Locks are per process, so on Ray the driver's lock on the sweep
folder and a worker's lock on an arm folder never meet, while a second writer of either is refused.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class Resources:
    """What a stage reserves on a cluster (Ray's ``num_cpus`` / ``num_gpus``); the local executor ignores it."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0


@dataclass(frozen=True)
class Stage:
    """One step of a sweep: ``fn(*args, **{key: result of stage inputs[key]})``.

    Attributes:
        name: unique in the plan; how logs and errors name it (``"implant"``, ``"arm/lora-r8-s0"``).
        fn: a module-level function (a Ray worker imports it by name); its arguments and result must pickle.
        args: its leading arguments.
        inputs: keyword -> the stage whose result it receives.
        after: stages that must have finished first although their results are not passed on.
        resources: what it reserves on a cluster.
        lost: ``lost(error, traceback)`` is called when the stage raised or its worker died past its retries; what it
            returns stands in for the result and the stages after it go on. ``None``: the sweep stops with the error.
    """

    name: str
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    inputs: Mapping[str, str] = field(default_factory=dict)
    after: tuple[str, ...] = ()
    resources: Resources = Resources()
    lost: Callable[[str, str], Any] | None = None

    @property
    def needs(self) -> tuple[str, ...]:
        """Every stage that must finish before this one starts (inputs first)."""
        return tuple(dict.fromkeys([*self.inputs.values(), *self.after]))


def check_plan(stages: Sequence[Stage]) -> list[Stage]:
    """The plan as a list, checked: unique names, each stage listed after every stage it needs.

    Raises:
        ValueError: a repeated name, or a stage needing one that is not listed before it.
    """
    seen: set[str] = set()
    for stage in stages:
        if stage.name in seen:
            raise ValueError(f"the sweep plan names stage {stage.name!r} twice")
        missing = [n for n in stage.needs if n not in seen]
        if missing:
            raise ValueError(f"stage {stage.name!r} needs {', '.join(missing)}, which the plan does not list before it")
        seen.add(stage.name)
    return list(stages)


class Executor(Protocol):
    """Runs a sweep's plan; returns each stage's result by name."""

    def folder(self, path: Path) -> Path:
        """``path`` as the stages must be given it (the Ray executor's workers need it absolute)."""
        ...

    def run(self, stages: Sequence[Stage]) -> dict[str, Any]:
        """Run every stage of the plan after the stages it needs; a stage without ``lost`` that fails raises."""
        ...


def error_text(exc: BaseException) -> tuple[str, str]:
    """``("Type: message", traceback)`` of a stage's failure."""
    return f"{type(exc).__name__}: {exc}", "".join(traceback.format_exception(exc))


class LocalExecutor:
    """Every stage in this process, one after another in plan order (the default; needs no Ray)."""

    def folder(self, path: Path) -> Path:
        """``path`` unchanged: recorded paths stay relative when ``--out`` is, so the folder can move."""
        return Path(path)

    def run(self, stages: Sequence[Stage]) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for stage in check_plan(stages):
            kwargs = {key: results[name] for key, name in stage.inputs.items()}
            try:
                results[stage.name] = stage.fn(*stage.args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - a stage with ``lost`` records its failure; others stop the sweep
                if stage.lost is None:
                    raise
                results[stage.name] = stage.lost(*error_text(exc))
        return results
