"""fairgym's SFT trainer: TRL's ``SFTTrainer`` with the LM head run only at the positions the loss reads.

A fairgym SFT row is a prompt of ~130 tokens and a completion of a few (``approve<|im_end|>``), and only the
completion's tokens carry a label (``completion_only_loss``). TRL's fused LM head projects through the vocabulary
(49k for SmolLM2) only the labelled positions on CUDA/XPU (``compact``); on other devices it projects every
position, to keep tile shapes fixed for compilers such as Neuron's, and then zeroes the unlabelled ones. Eager CPU
training gains nothing from fixed shapes, so there every prompt position's projection, and its recomputation in
the backward pass, is wasted work. ``CompactHeadSFTTrainer`` asks for the compact path on every device while TRL
computes the loss; the loss, its gradients and TRL's metrics are the same numbers (``tests/training``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import trl.trainer.utils as trl_utils
from trl import SFTTrainer


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
    """``SFTTrainer`` whose loss runs the LM head only where the completion mask is set.

    Attributes:
        compact_lm_head: set ``False`` for TRL's stock path (every position through the head off CUDA).
    """

    compact_lm_head = True

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        scope = compact_lm_head() if self.compact_lm_head else contextlib.nullcontext(False)
        with scope:
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
