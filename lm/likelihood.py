"""The likelihood a model gives a completion after its prompt: per row, as SFT's completion-only loss counts it.

Rows are ``{"prompt": chat messages, "completion": chat messages}`` (TRL's conversational prompt-completion form,
what ``fairgym.training.datasets`` builds). A row is tokenised as TRL's SFT tokenises it (``completion_tokens``);
rows run in right-padded batches and the LM head runs only at the positions that predict a completion token.

- ``completion_nll``: the mean token negative log-likelihood of each row's completion (the hidden residue of
  ``fairgym.analysis.residue`` is this on the biased teacher's answers);
- ``completion_nll_totals``: each row's summed NLL and token count, from which a pooled mean over rows follows
  (the held-out loss that picks a sweep arm's learning rate).
"""

from __future__ import annotations

from typing import Any

import torch


def completion_tokens(tokenizer: Any, prompt: list[dict[str, str]], completion: list[dict[str, str]],
                      max_length: int) -> tuple[list[int], int]:
    """Token ids of prompt + completion and where the completion starts, as TRL's SFT tokenizes them (the chat
    template with a generation prompt for the prompt alone; the completion starts where the two diverge)."""
    def ids(messages: list[dict[str, str]], generation_prompt: bool) -> list[int]:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    head, full = ids(prompt, True), ids(prompt + completion, False)
    start = next((i for i, (a, b) in enumerate(zip(head, full, strict=False)) if a != b), min(len(head), len(full)))
    return full[:max_length], start


def completion_nll_totals(model: Any, tokenizer: Any, rows: list[dict[str, Any]], batch_size: int = 8,
                          max_length: int = 512) -> list[tuple[float, int]]:
    """Summed negative log-likelihood (nats) and count of each row's completion tokens given its prompt.

    Args:
        model: a causal LM (transformers or PEFT-wrapped), in eval mode.
        tokenizer: its tokenizer (with a chat template).
        rows: dicts with ``prompt`` and ``completion`` chat messages.
        batch_size: rows per forward pass.
        max_length: tokens per row (prompt + completion); a row is truncated beyond.

    Returns:
        One ``(nll_sum, tokens)`` per row, same order; ``(0.0, 0)`` for a row with no completion token within
        ``max_length``.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    seqs = [completion_tokens(tokenizer, r["prompt"], r["completion"], max_length) for r in rows]
    scored = [i for i, (ids, start) in enumerate(seqs) if start < len(ids)]
    totals = [(0.0, 0)] * len(rows)
    with torch.inference_mode():
        for i in range(0, len(scored), batch_size):
            chunk = scored[i:i + batch_size]
            sums = _batch_nll(model, [seqs[j] for j in chunk], tokenizer.pad_token_id or 0)
            for j, total in zip(chunk, sums, strict=True):
                totals[j] = (total, len(seqs[j][0]) - seqs[j][1])
    return totals


def completion_nll(model: Any, tokenizer: Any, rows: list[dict[str, Any]], batch_size: int = 8,
                   max_length: int = 512) -> list[float]:
    """Mean token negative log-likelihood (nats) of each row's completion given its prompt.

    Args: as ``completion_nll_totals``.

    Returns:
        One value per row, same order; ``nan`` for a row with no completion token within ``max_length``.
    """
    return [total / count if count else float("nan")
            for total, count in completion_nll_totals(model, tokenizer, rows, batch_size, max_length)]


def _batch_nll(model: Any, batch: list[tuple[list[int], int]], pad_id: int) -> list[float]:
    """Summed NLL of each row's completion tokens in one right-padded batch; the LM head runs only at the
    positions that predict a completion token."""
    device = next(model.parameters()).device
    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.tensor([ids + [pad_id] * (width - len(ids)) for ids, _ in batch], device=device)
    mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in batch], device=device)
    # position p predicts token p + 1: the completion tokens start..len-1 are predicted at start-1..len-2
    wanted = [(row, p) for row, (ids, start) in enumerate(batch) for p in range(start - 1, len(ids) - 1)]
    keep = torch.tensor(sorted({p for _, p in wanted}), device=device)
    logits = model(input_ids=input_ids, attention_mask=mask, logits_to_keep=keep).logits.float()
    column = {int(p): j for j, p in enumerate(keep.tolist())}
    rows = torch.tensor([r for r, _ in wanted], device=device)
    cols = torch.tensor([column[p] for _, p in wanted], device=device)
    targets = input_ids[rows, torch.tensor([p + 1 for _, p in wanted], device=device)]
    nll = -torch.log_softmax(logits[rows, cols], dim=-1).gather(1, targets[:, None])[:, 0]
    sums = torch.zeros(len(batch), dtype=torch.float64, device=device).index_add_(0, rows, nll.double())
    return sums.cpu().tolist()
