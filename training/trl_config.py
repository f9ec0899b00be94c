"""The libraries' own configs built from a ``TrainConfig``: PEFT's ``LoraConfig`` and TRL's ``SFTConfig`` /
``DPOConfig`` / ``GRPOConfig``. Every shared ``TrainConfig`` field reaches TRL through ``trl_config``, the one place it
is passed on, so a setting keeps one form from the YAML to the trainer.

GRPO recipes with ``use_vllm`` get TRL's vLLM generation settings (colocate mode), on CUDA with vLLM installed only.

CPU defaults: float32, ``bf16=False``, no gradient checkpointing, ``use_cpu=True``, no dataloader workers (TRL's
defaults make a CPU step ~19x slower). GPU: bf16 autocast. W&B reaches the run through fairgym's guarded callback
(``fairgym.analysis.wandb_log.training_callback``), never TRL's stock ``report_to``, so a W&B failure stays a warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from fairgym.training.config import GRPO_RECIPES, TrainConfig, check_vllm_recipe


def lora_config(config: TrainConfig) -> Any:
    """The PEFT ``LoraConfig`` for ``config`` (``None`` for a full update)."""
    if config.method != "lora":
        return None
    from peft import LoraConfig

    alpha: Any = config.lora_alpha  # PEFT annotates an int; any positive number scales the update
    return LoraConfig(r=config.rank, lora_alpha=alpha, lora_dropout=config.dropout,
                      target_modules=config.target_modules, use_rslora=config.use_rslora, use_dora=config.use_dora,
                      bias="none", task_type="CAUSAL_LM")


def on_cuda(config: TrainConfig) -> bool:
    """Whether the run trains on CUDA (``device`` as given, else when CUDA is available)."""
    return (config.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")


def mixed_precision(config: TrainConfig) -> str | None:
    """The autocast dtype of training (``"bf16"``, ``"fp16"``) or ``None`` for float32 throughout.

    ``config.dtype`` names the compute precision, never the trained weights' dtype: those stay float32 master
    weights for every method, so a full update and a LoRA adapter (which PEFT keeps in float32) train alike.
    ``None`` means bf16 autocast on a CUDA device that supports it, else float32.
    """
    from fairgym.lm.models import resolve_dtype

    if config.dtype is None:
        return "bf16" if on_cuda(config) and torch.cuda.is_bf16_supported() else None
    dtype = resolve_dtype(config.dtype, "cpu")
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype)


def check_vllm(config: TrainConfig) -> None:
    """Refuse ``use_vllm`` where vLLM cannot generate: a recipe that generates nothing, no CUDA GPU for this run, or
    vLLM not installed (before any model is loaded; ``TrainConfig`` already refused ``device='cpu'``).

    Raises:
        ValueError: naming what is missing and the way out.
    """
    if not config.use_vllm:
        return
    check_vllm_recipe(config)
    if not on_cuda(config) or not torch.cuda.is_available():
        raise ValueError("TrainConfig.use_vllm=true needs a CUDA GPU (vLLM generates on the GPU) and this process sees "
                         "none; set use_vllm=false to generate with transformers on CPU.")
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        raise ValueError("TrainConfig.use_vllm=true needs vLLM, which is not installed: pip install 'trl[vllm]' (a "
                         "vLLM version TRL supports, 0.22 to 0.31), or set use_vllm=false.")


def generation_args(config: TrainConfig) -> dict[str, Any]:
    """TRL's vLLM settings of a GRPO run (none without ``use_vllm``, so TRL generates with transformers)."""
    if not config.use_vllm:
        return {}
    check_vllm(config)
    return {"use_vllm": True, "vllm_mode": config.vllm_mode,
            "vllm_gpu_memory_utilization": config.vllm_gpu_memory_utilization}


def trl_config(config: TrainConfig, args_class: type, **recipe_args: Any) -> Any:
    """TRL's config of class ``args_class`` (``SFTConfig``, ``DPOConfig``, ``GRPOConfig``) for ``config``: the
    settings every recipe shares from ``config``, then the recipe's own (``recipe_args``), then for GRPO the vLLM
    generation settings (``use_vllm``, ``vllm_mode``: ``generation_args``)."""
    precision = mixed_precision(config)
    if config.recipe in GRPO_RECIPES:
        recipe_args = {**recipe_args, **generation_args(config)}
    return args_class(
        output_dir=config.output_dir, max_steps=config.max_steps, per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum, learning_rate=config.learning_rate,
        warmup_steps=config.warmup, lr_scheduler_type=config.lr_scheduler,
        logging_steps=config.logging_steps, save_strategy="steps", save_steps=config.save_steps,
        save_total_limit=2, seed=config.seed, data_seed=config.seed, bf16=precision == "bf16", fp16=precision == "fp16",
        use_cpu=not on_cuda(config), activation_checkpointing=False, dataloader_num_workers=0, report_to="none",
        run_name=config.run_name or Path(config.output_dir).name, disable_tqdm=True,
        ddp_find_unused_parameters=False, **recipe_args)
