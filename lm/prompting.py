"""Prompts for LLM agents: env observations as chat messages, rendered through the model's chat template.

Allocation envs give one observation text (instructions, then the state); it becomes a system prompt and a user
turn. Dialogue envs give the whole conversation as chat messages in ``info["messages"]``, used as they are.
Prompts longer than the context window lose their oldest non-system turns first, and the loss is counted.
"""

from __future__ import annotations

from typing import Any

from fairgym.envs import keys

SYSTEM_PROMPT = (
    "You are a careful decision-maker. Read the situation and answer exactly in the format the instructions "
    "ask for, with no extra text."
)


def build_messages(observation: str, info: dict[str, Any]) -> list[dict[str, str]]:
    """The chat messages for one decision: ``info["messages"]`` when the env gives them, else system + user.

    Args:
        observation: the env's observation text.
        info: the env's info dict for the pending decision.

    Returns:
        A list of ``{"role": ..., "content": ...}`` dicts.
    """
    messages = info.get(keys.MESSAGES) if isinstance(info, dict) else None
    if messages:
        return [{"role": m["role"], "content": m["content"]} for m in messages]
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": observation}]


def _plain_template(messages: list[dict[str, str]]) -> str:
    """A readable fallback for tokenizers without a chat template."""
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join(lines) + "\n\nAssistant:"


def apply_template(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """Chat-template text of ``messages`` ending with the assistant's generation prompt."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return _plain_template(messages)


def count_tokens(tokenizer: Any, text: str) -> int:
    """Tokens of rendered prompt text (the template already holds any special tokens)."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _drop_oldest_turn(messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], int]:
    """Remove the oldest non-system turn (and an assistant turn left leading after it); return the count."""
    first = next(i for i, m in enumerate(messages) if m["role"] != "system")
    kept = messages[:first] + messages[first + 1:]
    dropped = 1
    if first < len(kept) - 1 and kept[first]["role"] == "assistant":  # keep the conversation opening with a user
        kept = kept[:first] + kept[first + 1:]
        dropped += 1
    return kept, dropped


def render_prompt(tokenizer: Any, messages: list[dict[str, str]], max_tokens: int | None) -> tuple[str, int]:
    """Render ``messages`` with the chat template, trimming the oldest non-system turns to fit ``max_tokens``.

    The last turn is always kept (even when it alone is too long).

    Args:
        tokenizer: a transformers tokenizer (its chat template is used when it has one).
        messages: chat messages, e.g. from ``build_messages``.
        max_tokens: the token budget of the prompt, or ``None`` for no limit.

    Returns:
        ``(text, turns_trimmed)``.
    """
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise ValueError(f"max_tokens must be a positive int or None, got {max_tokens!r}")
    if not messages:
        raise ValueError("messages is empty; pass at least one user turn")
    text, trimmed = apply_template(tokenizer, messages), 0
    while max_tokens is not None and count_tokens(tokenizer, text) > max_tokens:
        if sum(m["role"] != "system" for m in messages) <= 1:
            break
        messages, dropped = _drop_oldest_turn(messages)
        trimmed += dropped
        text = apply_template(tokenizer, messages)
    return text, trimmed
