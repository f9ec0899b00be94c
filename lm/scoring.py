"""Choice scoring: the log-likelihood of each valid choice after its prompt, in one batched forward pass.

How the pass is laid out (all rows of a batch share the token prefix of the system prompt and instructions):

1. the longest token prefix shared by every prompt runs once with ``use_cache=True``;
2. each prompt becomes one row: its own suffix, then every choice's tokens but the last, packed one after
   another; a 4D attention mask lets each choice see the prefix, the suffix and its own earlier tokens only,
   and position ids restart after the suffix for every choice, so each choice is scored exactly as if alone;
3. rows are left padded so the positions whose logits are needed sit at the end, and only those go through
   the LM head (``logits_to_keep``).

A choice of ``n`` tokens costs ``n - 1`` positions; a prompt's suffix is computed once for all its choices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class _Row:
    """One prompt's packed row: its suffix, then each choice's tokens but the last."""

    suffix: list[int]
    choices: list[list[int]]

    @property
    def segments(self) -> list[list[int]]:
        return [c[:-1] for c in self.choices]

    @property
    def tail(self) -> int:
        return sum(len(s) for s in self.segments)


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids of ``text`` without added special tokens (rendered chat prompts already hold them)."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def common_prefix_length(sequences: list[list[int]]) -> int:
    """Length of the longest token prefix shared by all ``sequences``."""
    if not sequences:
        return 0
    first, n = sequences[0], min(len(s) for s in sequences)
    for i in range(n):
        if any(s[i] != first[i] for s in sequences):
            return i
    return n


def shared_prefix_length(sequences: list[list[int]]) -> int:
    """The prefix whose KV cache a batch can share: the common prefix, leaving every sequence at least one token
    of its own (the row must still compute the logits at its last position)."""
    if not sequences:
        return 0
    return max(min(common_prefix_length(sequences), min(len(s) for s in sequences) - 1), 0)


def encode_choices(tokenizer: Any, choices: list[list[str]]) -> list[list[list[int]]]:
    """Token ids of every choice; a choice that tokenises to nothing is a ``ValueError`` naming it."""
    encoded = []
    for row in choices:
        ids = [encode(tokenizer, c) for c in row]
        empty = [c for c, i in zip(row, ids, strict=True) if not i]
        if empty:
            raise ValueError(f"choice {empty[0]!r} tokenises to nothing; every choice needs at least one token")
        encoded.append(ids)
    return encoded


def _validate(prompts: list[str], choices: list[list[str]]) -> None:
    if len(prompts) != len(choices):
        raise ValueError(f"prompts and choices differ in length ({len(prompts)} vs {len(choices)}); pass one "
                         "list of choices per prompt")
    for i, row in enumerate(choices):
        if not row:
            raise ValueError(f"choices[{i}] is empty; every prompt needs at least one choice")


def prefix_cache(model: Any, prefix: list[int], batch: int, device: torch.device) -> Any:
    """The KV cache of ``prefix``, computed once and expanded (as views where possible) to ``batch`` rows.

    Pass it as ``cache=`` to the forward pass of the rows' suffixes (position ids starting at ``len(prefix)``,
    an attention mask covering prefix and suffix). Shared by choice scoring, the sweep's decision logits and the
    SFT trainer's shared prefix (with grad: ``expand`` sums the rows' gradients back into the one prefix pass).

    Raises:
        ValueError: the model returned no KV cache (it cannot reuse a prefix).
    """
    ids = torch.tensor([prefix], device=device)
    out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
    cache = getattr(out, "cache", None)
    if cache is None:
        raise ValueError(f"{type(model).__name__} returned no KV cache for use_cache=True, so a shared prefix cannot "
                         "be reused; turn prefix reuse off for this model")
    layers = getattr(cache, "layers", None)
    if layers and all(hasattr(layer, "keys") and hasattr(layer, "values") for layer in layers):
        for layer in layers:  # views: the cache update concatenates into fresh tensors anyway
            layer.keys = layer.keys.expand(batch, -1, -1, -1)
            layer.values = layer.values.expand(batch, -1, -1, -1)
    else:
        cache.batch_repeat_interleave(batch)
    return cache


def _row_layout(row: _Row, prefix_len: int) -> tuple[list[int], list[int], list[int]]:
    """Tokens, position ids and segment ids (0 = suffix, k = k-th choice) of one packed row."""
    tokens, positions = list(row.suffix), list(range(prefix_len, prefix_len + len(row.suffix)))
    segment = [0] * len(row.suffix)
    start = prefix_len + len(row.suffix)
    for k, seg in enumerate(row.segments, start=1):
        tokens += seg
        positions += list(range(start, start + len(seg)))
        segment += [k] * len(seg)
    return tokens, positions, segment


def _batch_inputs(rows: list[_Row], prefix_len: int, pad_id: int, dtype: torch.dtype, device: torch.device):
    """Left-padded input ids, position ids and the 4D additive attention mask over prefix + rows."""
    layouts = [_row_layout(r, prefix_len) for r in rows]
    width = max(len(t) for t, _, _ in layouts)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    pos = np.zeros((len(rows), width), dtype=np.int64)
    seg = np.full((len(rows), width), -1, dtype=np.int64)  # -1 marks padding
    for b, (t, p, s) in enumerate(layouts):
        ids[b, width - len(t):], pos[b, width - len(t):], seg[b, width - len(t):] = t, p, s
    seg_t = torch.from_numpy(seg)
    q, k = seg_t[:, :, None], seg_t[:, None, :]
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    allowed = causal & (k >= 0) & ((k == 0) | (k == q))  # the suffix, and a choice's own earlier tokens
    allowed |= torch.eye(width, dtype=torch.bool)  # padding attends to itself, so no row is all masked
    allowed = torch.cat([torch.ones(len(rows), width, prefix_len, dtype=torch.bool), allowed], dim=2)
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)
    return (torch.from_numpy(ids).to(device), torch.from_numpy(pos).to(device), mask[:, None].to(device))


def _gather(logprobs: torch.Tensor, rows: list[_Row]) -> list[list[float]]:
    """Sum each choice's token log-probabilities from the kept last positions of its row."""
    keep = logprobs.shape[1]
    lp = logprobs.cpu().numpy()
    scores = []
    for b, row in enumerate(rows):
        first = keep - row.tail - 1  # the last suffix position predicts every choice's first token
        out, offset = [], first + 1
        for choice in row.choices:
            total = float(lp[b, first, choice[0]])
            for t in range(1, len(choice)):
                total += float(lp[b, offset + t - 1, choice[t]])
            offset += len(choice) - 1
            out.append(total)
        scores.append(out)
    return scores


def score_choice_ids(model: Any, prompt_ids: list[list[int]], choice_ids: list[list[list[int]]], *,
                     pad_id: int, reuse_prefix: bool = True) -> list[list[float]]:
    """``score_choices`` on token ids (see there)."""
    prefix_len = shared_prefix_length(prompt_ids) if reuse_prefix else 0
    rows = [_Row(p[prefix_len:], c) for p, c in zip(prompt_ids, choice_ids, strict=True)]
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    with torch.inference_mode():
        cache = prefix_cache(model, prompt_ids[0][:prefix_len], len(rows), device) if prefix_len else None
        ids, pos, mask = _batch_inputs(rows, prefix_len, pad_id, dtype, device)
        keep = max(r.tail for r in rows) + 1
        out = model(input_ids=ids, position_ids=pos, attention_mask=mask, cache=cache,
                    use_cache=cache is not None, logits_to_keep=keep)
        logprobs = torch.log_softmax(out.logits.float(), dim=-1)
    return _gather(logprobs, rows)


def score_choices(model: Any, tokenizer: Any, prompts: list[str], choices: list[list[str]], *,
                  reuse_prefix: bool = True) -> list[list[float]]:
    """Summed log-likelihood of each choice's tokens after its prompt, for a batch of prompts.

    The prompt and each choice are tokenised separately and concatenated, so a choice's tokens are exactly
    what follows its prompt. One batched forward pass; with ``reuse_prefix`` the longest token prefix shared by
    all prompts is computed once and its KV cache reused by every row.

    Args:
        model: a causal LM (transformers or PEFT-wrapped).
        tokenizer: its tokenizer.
        prompts: rendered prompt texts (e.g. from ``render_prompt``).
        choices: for each prompt, its list of choice texts.
        reuse_prefix: reuse the shared prefix's KV cache (results are the same either way).

    Returns:
        ``scores[i][j]``: the log-likelihood of ``choices[i][j]`` after ``prompts[i]``.

    Raises:
        ValueError: mismatched lengths, no choices, or a choice that tokenises to nothing.
    """
    _validate(prompts, choices)
    if not prompts:
        return []
    prompt_ids = [encode(tokenizer, p) for p in prompts]
    if any(not p for p in prompt_ids):
        raise ValueError("a prompt tokenises to nothing; pass the rendered prompt text")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return score_choice_ids(model, prompt_ids, encode_choices(tokenizer, choices), pad_id=pad_id,
                            reuse_prefix=reuse_prefix)


def choice_distribution(logprobs: list[float], temperature: float = 1.0) -> np.ndarray:
    """Softmax over choice log-likelihoods at ``temperature`` (> 0)."""
    z = np.asarray(logprobs, dtype=np.float64) / temperature
    z = np.exp(z - z.max())
    return z / z.sum()


def pick_choice(logprobs: list[float], temperature: float, top_p: float, rng: np.random.Generator) -> int:
    """Greedy (``temperature == 0``) or sampled index from the choice distribution, with nucleus ``top_p``."""
    if temperature == 0:
        return int(np.argmax(logprobs))
    probs = choice_distribution(logprobs, temperature)
    order = np.argsort(-probs, kind="stable")
    cum = np.cumsum(probs[order])
    kept = order[: int(np.searchsorted(cum, top_p - 1e-12) + 1)]
    p = probs[kept] / probs[kept].sum()
    return int(kept[rng.choice(len(kept), p=p)])
