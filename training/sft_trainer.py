"""fairgym's SFT trainer: TRL's ``SFTTrainer`` with the LM head run only at the positions the loss reads.

A fairgym SFT row is a prompt of ~130 tokens and a completion of a few (``approve<|im_end|>``), and only the
completion's tokens carry a label (``completion_only_loss``). TRL's fused LM head projects through the vocabulary
(49k for SmolLM2) only the labelled positions on CUDA/XPU (``compact``); on other devices it projects every
position, to keep tile shapes fixed for compilers such as Neuron's, and then zeroes the unlabelled ones. Eager CPU
training gains nothing from fixed shapes, so there every prompt position's projection, and its recomputation in
the backward pass, is wasted work. ``CompactHeadSFTTrainer`` asks for the compact path on every device while TRL
computes the loss; the loss, its gradients and TRL's metrics are the same numbers (``tests/training``).

The backbone is the rest of the step's cost, and every Lending prompt in a batch begins with the same ~90-100
tokens (system prompt and instructions). When a batch's rows share at least ``min_shared_prefix`` leading tokens,
the trainer runs them once and the rows' remaining tokens attend to their expanded KV cache
(``fairgym.training.prefix_sharing``); TRL's own ``compute_loss`` then runs on the suffixes, so the loss,
gradients and metrics (``entropy``, ``mean_token_accuracy``, ``num_tokens``) are the stock ones up to float
rounding. Batches without such a prefix (Dialogue turns can differ early), models without a KV cache, activation
checkpointing and distributed wrappers (DDP/FSDP/DeepSpeed, untested here) take the stock path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import trl.trainer.utils as trl_utils
from trl import SFTTrainer

from fairgym.training.prefix_sharing import prefix_shared_inputs, takes_kv_cache


@contextlib.contextmanager
def compact_lm_head() -> Iterator[bool]:
    """Within the block, TRL's fused LM head projects only the labelled positions, whatever the device.

    Yields whether it could: ``False`` when this TRL no longer decides ``compact`` through ``_use_triton`` (then
    the stock path runs, which is correct, only slower).
    """
    decide = getattr(trl_utils, "_use_triton", None)
    if decide is None:
        yield False
        return
    trl_utils._use_triton = lambda device: True  # only the choice of positions; the kernels keep their own check
    try:
        yield True
    finally:
        trl_utils._use_triton = decide


class CompactHeadSFTTrainer(SFTTrainer):
    """``SFTTrainer`` whose loss runs the LM head only where the completion mask is set, and the batch's shared
    prompt prefix through the backbone once.

    Attributes:
        compact_lm_head: set ``False`` for TRL's stock path (every position through the head off CUDA).
        min_shared_prefix: the shortest shared prefix (tokens) run once for the batch; ``0`` or ``None`` runs
            every row whole, as TRL does.
        last_shared_prefix: tokens shared by the last loss computed (``0``: the stock path ran).
    """

    compact_lm_head = True
    min_shared_prefix: int | None = 16
    last_shared_prefix = 0

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        scope = compact_lm_head() if self.compact_lm_head else contextlib.nullcontext(False)
        with scope:
            if not return_outputs:  # the outputs' logits would cover only the suffix
                inputs = self._share_prefix(model, inputs)
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)

    def _share_prefix(self, model: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        """The suffix inputs over the shared prefix's KV cache, or ``inputs`` unchanged for the stock path."""
        shared = (prefix_shared_inputs(model, inputs, self.min_shared_prefix or 0) if self._can_share_prefix(model)
                  else None)
        self.last_shared_prefix = 0 if shared is None else inputs["input_ids"].shape[1] - shared["input_ids"].shape[1]
        return inputs if shared is None else shared

    def _can_share_prefix(self, model: Any) -> bool:
        # distributed wrappers (DDP/FSDP/DeepSpeed) are untested with two forwards per step; checkpointing
        # recomputes layers without the cache
        return (bool(self.min_shared_prefix) and self.accelerator.unwrap_model(model) is model
                and not getattr(model, "is_activation_checkpointing", False) and takes_kv_cache(model))
