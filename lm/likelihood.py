"""The likelihood a model gives a completion after its prompt: per row, as SFT's completion-only loss counts it.

Rows are ``{"prompt": chat messages, "completion": chat messages}`` (TRL's conversational prompt-completion form,
what ``fairgym.training.datasets`` builds). A row is tokenised as TRL's SFT tokenises it (``completion_tokens``);
rows run in batches that share their common token prefix, as choice scoring does (``fairgym.lm.scoring``).

- ``completion_nll``: the mean token negative log-likelihood of each row's completion (the hidden residue of
  ``fairgym.analysis.residue`` is this on the biased teacher's answers);
- ``completion_nll_totals``: each row's summed NLL and token count, from which a pooled mean over rows follows
  (the held-out loss that picks a sweep arm's learning rate).
"""

from __future__ import annotations

from typing import Any

from fairgym.lm.scoring import score_choice_ids


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

    Each batch runs as choice scoring does (``fairgym.lm.scoring.score_choice_ids``): the token prefix all its
    prompts share (system prompt, instructions) once, its KV cache reused by every row, and the LM head only at the
    positions that predict a completion token.

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
    scored = [i for i, (ids, start) in enumerate(seqs) if 0 < start < len(ids)]
    totals = [(0.0, 0)] * len(rows)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for i in range(0, len(scored), batch_size):
        chunk = scored[i:i + batch_size]
        prompts = [seqs[j][0][:seqs[j][1]] for j in chunk]
        completions = [[seqs[j][0][seqs[j][1]:]] for j in chunk]
        logprobs = score_choice_ids(model, prompts, completions, pad_id=pad_id)
        for j, row, completion in zip(chunk, logprobs, completions, strict=True):
            totals[j] = (-row[0], len(completion[0]))
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
