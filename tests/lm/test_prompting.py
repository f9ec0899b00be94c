"""Prompts: messages from observations or dialogue infos, chat-template rendering, trimming of old turns."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from fairgym.envs import keys
from fairgym.lm.prompting import SYSTEM_PROMPT, build_messages, count_tokens, render_prompt


def dialogue(turns: int) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": "Be polite."}]
    for i in range(turns):
        messages += [{"role": "user", "content": f"question {i} about the group North"},
                     {"role": "assistant", "content": f"answer {i}, respectful"}]
    return messages + [{"role": "user", "content": "last question"}]


def test_build_messages_from_observation():
    messages = build_messages("Applicant: score 600.", {keys.CHOICES: ["approve", "deny"]})
    assert messages == [{"role": "system", "content": SYSTEM_PROMPT},
                        {"role": "user", "content": "Applicant: score 600."}]


def test_build_messages_uses_dialogue_messages():
    convo = dialogue(1)
    assert build_messages("ignored", {keys.MESSAGES: convo}) == convo


def test_render_prompt_ends_with_generation_prompt(tok):
    text, trimmed = render_prompt(tok, dialogue(1), None)
    assert text.endswith("<|im_start|>assistant\n") and trimmed == 0
    assert "question 0" in text and "Be polite." in text


def test_render_prompt_trims_oldest_turns_and_counts(tok):
    full, _ = render_prompt(tok, dialogue(4), None)
    budget = count_tokens(tok, full) - 5
    text, trimmed = render_prompt(tok, dialogue(4), budget)
    assert trimmed == 2  # the oldest user turn and the assistant reply after it
    assert count_tokens(tok, text) <= budget
    assert "question 0" not in text and "question 1" in text and "Be polite." in text and "last question" in text


def test_render_prompt_keeps_system_and_last_turn_when_too_long(tok):
    text, trimmed = render_prompt(tok, dialogue(3), 3)
    assert trimmed == 6
    assert "Be polite." in text and "last question" in text and "question 2" not in text


def test_render_prompt_without_chat_template(tiny_model_dir):
    plain = AutoTokenizer.from_pretrained(tiny_model_dir)
    plain.chat_template = None
    text, _ = render_prompt(plain, build_messages("Applicant.", {}), None)
    assert text.startswith("System: ") and text.endswith("Assistant:")


def test_render_prompt_bad_budget(tok):
    with pytest.raises(ValueError, match="max_tokens"):
        render_prompt(tok, dialogue(1), 0)
