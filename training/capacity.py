"""Refused before allocation: a LoRA rank the model cannot hold, and a training run that cannot fit in memory or
on its disk.

``check_capacity`` runs before any weights exist. It reads the model's ``config.json`` (``AutoConfig``) and builds
the model on PyTorch's meta device, where tensors have shapes and no storage, then wraps it with the run's
``LoraConfig`` through PEFT itself, also on the meta device: the adapted matrices and the trainable count are
PEFT's own (its ``all-linear`` rule, DoRA's magnitudes), and ``rank=100000`` costs nothing to inspect.

The memory estimate is a floor: float32 master weights (fairgym trains float32 masters whatever the autocast),
float32 gradients and AdamW's two float32 moments per trainable weight, and a frozen float32 copy of the model
where TRL makes one (DPO, or GRPO with ``beta > 0``, on a full update; LoRA's reference is the base with the
adapter switched off). Activations, the batch and the CUDA context come on top, so a run refused here cannot fit,
and one accepted may still be tight. The room is the GPU's free memory on CUDA, else the RAM available (under the
cgroup's limit in a container or a Slurm job). ``FAIRGYM_SKIP_MEMORY_CHECK=1`` turns the refusal into a warning
(e.g. under FSDP or DeepSpeed, which shard what this counts whole on every device).

The disk estimate is what the run holds in ``output_dir`` at its peak: up to three checkpoints at once (two kept,
``save_total_limit``, and the newest written before the oldest goes), each the saved weights (the whole model for a
full update, the adapter for LoRA) and AdamW's two moments, plus the final weights. A run refused here would fill
the disk part-way through a save; ``FAIRGYM_SKIP_DISK_CHECK=1`` turns the refusal into a warning.
"""

from __future__ import annotations

import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fairgym.training.config import GRPO_RECIPES, TrainConfig

GB = 1024**3
FP32 = 4  # bytes per float32 value
PER_TRAINABLE = 4 * FP32  # weight, gradient, AdamW's exp_avg and exp_avg_sq
SKIP_MEMORY_CHECK = "FAIRGYM_SKIP_MEMORY_CHECK"
SKIP_DISK_CHECK = "FAIRGYM_SKIP_DISK_CHECK"
KEPT_CHECKPOINTS = 2  # save_total_limit in training.trl_config
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def size(count: int) -> str:
    """Bytes for a person: ``2.10 GB``, ``512.0 MB``."""
    return f"{count / GB:.2f} GB" if count >= GB // 10 else f"{count / 2**20:.1f} MB"


@dataclass(frozen=True)
class Adapted:
    """A weight matrix a LoRA adapter wraps: its module name and its ``(out, in)`` shape."""

    name: str
    shape: tuple[int, int]


@dataclass(frozen=True)
class MemoryEstimate:
    """What a training run holds before its first batch.

    Attributes:
        params: every weight (adapter included), float32.
        trainable: the weights that train (gradients and AdamW state).
        reference: weights of a frozen reference copy (0 when TRL makes none).
    """

    params: int
    trainable: int
    reference: int = 0

    @property
    def parts(self) -> dict[str, int]:
        """Bytes per part: weights, gradients, AdamW state, reference copy."""
        return {"weights": self.params * FP32, "gradients": self.trainable * FP32,
                "AdamW": self.trainable * 2 * FP32, "reference": self.reference * FP32}

    @property
    def total(self) -> int:
        """Bytes in all, activations not counted."""
        return sum(self.parts.values())

    def describe(self) -> str:
        """``weights 0.50 GB (134.5M params) + gradients ... = 2.01 GB``."""
        parts = " + ".join(f"{name} {size(count)}" + (f" ({self.params / 1e6:.1f}M params)" if name == "weights"
                                                      else "")
                           for name, count in self.parts.items() if count)
        return f"{parts} = {size(self.total)}"


def model_skeleton(model: str | None) -> Any:
    """The causal LM of ``model``'s ``config.json`` on the meta device: every shape, no weights loaded.

    Raises:
        ValueError: no config can be read for ``model`` (naming it).
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    from fairgym.lm.models import check_model_source, resolve_model_path

    path = resolve_model_path(model)
    check_model_source(path)
    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"Could not read the config of model {path!r} ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200]}); pass a folder holding config.json, or a hub id.") from exc
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def with_adapter(skeleton: Any, peft_config: Any) -> Any:
    """``skeleton`` wrapped by PEFT with ``peft_config``, on the meta device (the adapter allocates nothing)."""
    from peft import get_peft_model

    from fairgym.lm.models import hide_checkpointing_deprecation

    with torch.device("meta"), hide_checkpointing_deprecation():
        return get_peft_model(skeleton, peft_config)


def adapted_matrices(peft_model: Any) -> list[Adapted]:
    """The matrices the adapter of ``peft_model`` wraps, with their ``(out, in)`` shapes."""
    from peft.tuners.lora import LoraLayer

    prefix = "base_model.model."
    return [Adapted(name.removeprefix(prefix), tuple(module.get_base_layer().weight.shape))  # type: ignore[arg-type]
            for name, module in peft_model.named_modules() if isinstance(module, LoraLayer)]


def check_rank(rank: int, matrices: list[Adapted]) -> None:
    """Refuse a LoRA rank above the smaller side of an adapted matrix (the update could not reach it).

    Raises:
        ValueError: naming the matrix, its shape, the largest rank it takes and how to proceed.
    """
    if not matrices:
        return
    smallest = min(min(m.shape) for m in matrices)
    if rank <= smallest:
        return
    limiting = [m for m in matrices if min(m.shape) == smallest]
    leaves = sorted({m.name.rsplit(".", 1)[-1] for m in limiting})
    out, inner = limiting[0].shape
    raise ValueError(f"TrainConfig.rank={rank} is above the smaller side of the adapted matrix {limiting[0].name} "
                     f"({out} x {inner}), so a LoRA update there cannot reach that rank and the surplus only costs "
                     f"memory; use rank <= {smallest}, target_modules without {', '.join(leaves)}, or method=full.")


def needs_reference(config: TrainConfig) -> bool:
    """Whether TRL keeps a frozen copy of the model: DPO or GRPO with ``beta > 0``, on a full update."""
    return config.method == "full" and (config.recipe == "dpo" or (config.recipe in GRPO_RECIPES and config.beta > 0))


def estimate_memory(model: Any, reference: bool) -> MemoryEstimate:
    """The estimate of ``model`` (a meta skeleton, wrapped by PEFT or not): shared weights counted once."""
    params = trainable = 0
    for p in model.parameters():
        params += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return MemoryEstimate(params=params, trainable=trainable, reference=params if reference else 0)


def _cgroup_files() -> list[tuple[Path, Path, Path, str]]:
    """(limit, usage, stat, reclaimable key) of this process's cgroup, v2 then v1, own path then the mount."""
    try:
        lines = PROC_CGROUP.read_text().splitlines()
    except OSError:
        return []
    paths = {parts[1]: parts[2].lstrip("/") for parts in (line.split(":", 2) for line in lines) if len(parts) == 3}
    v2 = [CGROUP_ROOT / paths.get("", ""), CGROUP_ROOT]
    v1 = [CGROUP_ROOT / "memory" / paths.get("memory", ""), CGROUP_ROOT / "memory"]
    return ([(d / "memory.max", d / "memory.current", d / "memory.stat", "inactive_file") for d in v2]
            + [(d / "memory.limit_in_bytes", d / "memory.usage_in_bytes", d / "memory.stat", "total_inactive_file")
               for d in v1])


def cgroup_room() -> int | None:
    """Bytes left under this process's cgroup memory limit (page cache it may reclaim counted free), or ``None``
    where no limit applies."""
    for limit_file, usage_file, stat_file, reclaimable in _cgroup_files():
        try:
            limit, usage = limit_file.read_text().strip(), int(usage_file.read_text())
            stat = dict(line.split() for line in stat_file.read_text().splitlines() if line.count(" ") == 1)
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:  # "max" or a near-2**63 value: no limit
            return max(int(limit) - usage + int(stat.get(reclaimable, 0)), 0)
    return None


def available_memory(config: TrainConfig, cuda: bool) -> tuple[int, str]:
    """Bytes the run may fill and where: the GPU's free memory on CUDA, else the available RAM."""
    if cuda:
        device = torch.device(config.device if config.device and ":" in config.device
                              else f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
        free, _ = torch.cuda.mem_get_info(device)
        return int(free), f"free on {device} ({torch.cuda.get_device_name(device)})"
    import psutil

    room, limit = psutil.virtual_memory().available, cgroup_room()
    return (room if limit is None else min(room, limit)), "of RAM available"


def _advice(config: TrainConfig, estimate: MemoryEstimate, room: int, matrices: list[Adapted]) -> str:
    """What to change so the run fits: the largest rank that does (LoRA), LoRA itself (full), the model."""
    machine = "a machine with more memory"
    if config.method == "full":
        drop = "beta=0 (no reference copy), " if needs_reference(config) and config.recipe != "dpo" else ""
        return f"use method=lora (it trains a small share of the weights), {drop}a smaller model, or {machine}"
    if config.adapter is not None or not matrices:
        return f"use a smaller model or adapter, or {machine}"
    per_rank = sum(sum(m.shape) for m in matrices)  # A is r x in, B is out x r
    fixed = estimate.trainable - config.rank * per_rank  # what does not grow with the rank (DoRA's magnitudes)
    frozen = (estimate.params - estimate.trainable) * FP32
    fits = (room - frozen - fixed * PER_TRAINABLE) // (per_rank * PER_TRAINABLE)
    if fits < 1:
        return f"the model's weights alone leave no room for an adapter: use a smaller model or {machine}"
    return f"lower the rank (rank <= {fits} fits), adapt fewer modules (target_modules), or use {machine}"


def _adapter_config(adapter: str) -> Any:
    """The ``PeftConfig`` of the adapter training continues (its ``adapter_config.json``; no weights read)."""
    from peft import PeftConfig

    if not (Path(adapter).expanduser() / "adapter_config.json").is_file():
        raise ValueError(f"adapter={adapter!r}: no adapter_config.json there; pass the folder written by a PEFT "
                         "model's save_pretrained (e.g. a fairgym training run's adapter folder).")
    config = PeftConfig.from_pretrained(str(Path(adapter).expanduser()))
    config.inference_mode = False  # it trains on
    config.base_model_name_or_path = None  # the skeleton has no name: PEFT would warn of a rename
    return config


def disk_need(config: TrainConfig, estimate: MemoryEstimate) -> tuple[int, str]:
    """Bytes the run holds in ``output_dir`` at its peak, and how they add up (the module docstring)."""
    saved = (estimate.params if config.method == "full" else estimate.trainable) * FP32
    checkpoint = saved + estimate.trainable * 2 * FP32
    saves = -(-config.max_steps // config.save_steps)  # the last step is saved too
    held = min(saves, KEPT_CHECKPOINTS + 1)
    return held * checkpoint + saved, f"{held} checkpoint(s) of {size(checkpoint)} (weights and AdamW state) and " \
                                      f"the final weights, {size(saved)}"


def _disk_folder(output_dir: str) -> Path:
    """The nearest existing folder at or above ``output_dir`` (the disk it will be on)."""
    folder = Path(output_dir).expanduser().resolve()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _refuse(message: str, switch: str) -> None:
    """Raise ``message``, or only warn when the environment variable ``switch`` is set (the caller's caller is
    where the warning points)."""
    if os.environ.get(switch, "").lower() in ("1", "true", "yes"):
        warnings.warn(f"{message} ({switch} is set: training anyway)", RuntimeWarning, stacklevel=3)
    else:
        raise ValueError(f"{message} (Set {switch}=1 to train anyway.)")


def check_disk(config: TrainConfig, estimate: MemoryEstimate) -> None:
    """Refuse a run whose checkpoints and weights would not fit on the disk of ``output_dir``."""
    need, parts = disk_need(config, estimate)
    free = shutil.disk_usage(_disk_folder(config.output_dir)).free
    if need <= free:
        return
    _refuse(f"training {config.arm} writes up to {size(need)} into {config.output_dir} ({parts}), more than the "
            f"{size(free)} free on its disk; free space there, set output_dir on a larger disk, or raise save_steps "
            f"(now {config.save_steps}) for fewer checkpoints.", SKIP_DISK_CHECK)


def check_capacity(config: TrainConfig, peft_config: Any, *, cuda: bool, verbose: bool = True) -> MemoryEstimate:
    """Refuse, before any weights are loaded, a LoRA rank the model cannot hold and a run that cannot fit in memory
    or on the disk of its ``output_dir`` (``check_disk``).

    Args:
        config: the run.
        peft_config: the ``LoraConfig`` the trainer will wrap the model with (``None`` for a full update, or
            when training continues the adapter ``config.adapter``, whose own config is read).
        cuda: whether the run trains on CUDA (the GPU's memory is the room, else the RAM).
        verbose: print the estimate (the main process of a launch does).

    Returns:
        The memory estimate.

    Raises:
        ValueError: a rank above an adapted matrix's smaller side, or an estimate beyond the room or the free disk,
            each in one line naming what to change.
    """
    model = model_skeleton(config.model)
    if config.adapter is not None and config.method == "lora":
        peft_config = _adapter_config(config.adapter)
    matrices: list[Adapted] = []
    if peft_config is not None:
        model = with_adapter(model, peft_config)
        matrices = adapted_matrices(model)
        if config.adapter is None:
            check_rank(config.rank, matrices)
    estimate = estimate_memory(model, needs_reference(config))
    room, where = available_memory(config, cuda)
    if verbose:
        print(f"[train] {config.arm}: memory before activations: {estimate.describe()}; {size(room)} {where}",
              flush=True)
    if estimate.total > room:
        _refuse(f"training {config.arm} needs at least {size(estimate.total)} before activations "
                f"({estimate.describe()}), more than the {size(room)} {where}; "
                f"{_advice(config, estimate, room, matrices)}.", SKIP_MEMORY_CHECK)
    check_disk(config, estimate)
    return estimate
