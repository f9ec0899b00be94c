"""The shared prompt prefix of an SFT batch, run through the backbone once and reused by every row.

Every Lending prompt in a batch begins with the same ~90-100 tokens (the system prompt and the env's instructions),
and the stock SFT step computes them once per row, forward and backward. ``prefix_shared_inputs`` runs that prefix
once (batch 1, with grad), expands its KV cache to the batch as views, and returns the model inputs of the rows'
remaining tokens: ``cache=`` the expanded cache, the attention mask over prefix + suffix, position ids continuing
from the prefix, and the labels of the suffix. The model's loss on them is the stock loss: the prefix is capped so
that every labelled position, and the position that predicts the first one, lies in the suffix. Gradients reach
the prefix forward through the expanded cache (``expand`` sums them over the rows), so the update is the stock one
up to float rounding. Under dropout (LoRA's ``lora_dropout``) the shared tokens draw one mask for the batch instead
of one per row: the expected update is the same, one step's draw is not.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from fairgym.lm.scoring import prefix_cache

IGNORE_INDEX = -100  # the label of positions the loss skips (TRL, transformers)


def label_free_prefix_length(input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                         labels: torch.Tensor) -> int:
    """Tokens that every row holds at the start and that no label needs: the length of the prefix to share.

    The common prefix of the rows' real (unpadded) tokens, capped at the first labelled position of any row less
    one, since the hidden state before a label predicts it and must be computed in the suffix pass.
    """
    same = (input_ids == input_ids[:1]).all(dim=0)
    if attention_mask is not None:
        same &= attention_mask.bool().all(dim=0)
    common = int(same.long().cumprod(dim=0).sum())
    labelled = labels != IGNORE_INDEX
    width = labels.shape[1]
    first_label = torch.where(labelled.any(dim=1), labelled.long().argmax(dim=1), width)  # no label: row end
    return max(min(common, int(first_label.min()) - 1, width - 1), 0)


def takes_kv_cache(model: Any) -> bool:
    """Whether ``model`` (or the base model under its PEFT wrapper) reads a KV cache through ``cache=``.

    Stateful models (Mamba-like recurrent states) and models whose forward has no ``cache`` argument do not.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    forward = getattr(type(base), "forward", None)
    if forward is None or getattr(base, "_is_stateful", False):
        return False
    return "cache" in inspect.signature(forward).parameters


def prefix_shared_inputs(model: Any, inputs: dict[str, Any], min_length: int) -> dict[str, Any] | None:
    """``inputs`` with their shared prefix turned into a KV cache, or ``None`` when there is nothing to share.

    Args:
        model: the causal LM being trained (a PEFT model or not); its forward must accept ``cache=`` and
            ``logits_to_keep=`` and return ``.cache`` (transformers' decoder models do).
        inputs: a right-padded SFT batch: ``input_ids``, ``labels`` and optionally ``attention_mask``.
        min_length: the shortest prefix worth a separate pass (shorter ones, or a batch of one row, give ``None``).

    Returns:
        The suffix inputs for the same model call (``input_ids``, ``labels`` and ``position_ids`` of the suffix,
        ``attention_mask`` over prefix + suffix, ``cache``); ``None`` to take the stock path (also for a batch
        with keys beyond these three, such as packed or multimodal ones).
    """
    ids, labels, mask = inputs["input_ids"], inputs.get("labels"), inputs.get("attention_mask")
    if labels is None or ids.shape[0] < 2 or set(inputs) - {"input_ids", "labels", "attention_mask"}:
        return None  # only the plain padded batch; packed or multimodal batches carry keys this cannot split
    length = label_free_prefix_length(ids, mask, labels)
    if length < max(min_length, 1):
        return None
    batch, width = ids.shape
    cache = prefix_cache(model, ids[0, :length].tolist(), batch, ids.device)
    positions = torch.arange(length, width, device=ids.device).expand(batch, -1)
    full_mask = mask if mask is not None else torch.ones_like(ids)
    return {"input_ids": ids[:, length:], "labels": labels[:, length:], "attention_mask": full_mask,
            "position_ids": positions, "cache": cache}
