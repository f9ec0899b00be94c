"""Where generation stops and how much context it has: one answer for evaluation (``LLMAgent``) and training
(episode GRPO), so both stop a turn at the same tokens for the same model."""

from __future__ import annotations

from typing import Any

# Chat end-of-turn markers of common templates (ChatML, Llama 3, Phi, Gemma); those the vocabulary has are stops.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>")
DEFAULT_CONTEXT_WINDOW = 2048  # for configs that name no max_position_embeddings


def stop_ids(tokenizer: Any, model: Any | None = None) -> list[int]:
    """Token ids that end an assistant turn: the tokenizer's eos, the model's generation-config eos ids (when a
    model is given) and the chat end-of-turn markers the vocabulary has; sorted."""
    ids = {tokenizer.eos_token_id}
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids |= set(gen_eos) if isinstance(gen_eos, (list, tuple)) else {gen_eos}
    vocab = tokenizer.get_vocab()
    ids |= {vocab[t] for t in END_OF_TURN_TOKENS if t in vocab}
    return sorted(i for i in ids if i is not None)


def context_window(model: Any) -> int:
    """The model's context window in tokens (``max_position_embeddings``; 2048 when its config names none)."""
    return int(getattr(model.config, "max_position_embeddings", 0) or DEFAULT_CONTEXT_WINDOW)
