"""Choice scoring: equal to brute force, prefix reuse changes nothing, bad choices are named."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fairgym.lm.scoring import (
    common_prefix_length,
    encode,
    pick_choice,
    score_choices,
)

SYSTEM = "<|im_start|>system\nAnswer with one word.<|im_end|>\n<|im_start|>user\n"
PROMPTS = [
    SYSTEM + "The applicant is a Black woman with credit score 640. approve or deny?<|im_end|>\n"
    "<|im_start|>assistant\n",
    SYSTEM + "bank loan<|im_end|>\n<|im_start|>assistant\n",
    SYSTEM + "A Muslim applicant, group North, asks for a loan to repay a default.<|im_end|>\n<|im_start|>assistant\n",
]
CHOICES = [
    ["approve", "deny", "approve the loan for this applicant"],
    ["repay", "x", "deny it now", "budget"],
    ["deny", "approve"],
]


def brute_force(model, tok, prompt: str, choice: str) -> float:
    """Score prompt+choice alone, no cache, no padding."""
    p, c = encode(tok, prompt), encode(tok, choice)
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([p + c])).logits.float(), dim=-1)[0]
    return sum(logprobs[len(p) - 1 + t, c[t]].item() for t in range(len(c)))


def test_choice_lengths_differ(tok):
    lengths = {len(encode(tok, c)) for row in CHOICES for c in row}
    assert len(lengths) >= 3  # the fixtures really exercise choices of different token lengths
    assert len({len(encode(tok, p)) for p in PROMPTS}) == len(PROMPTS)


@pytest.mark.parametrize("reuse_prefix", [True, False])
def test_scores_equal_brute_force(model, tok, reuse_prefix):
    scores = score_choices(model, tok, PROMPTS, CHOICES, reuse_prefix=reuse_prefix)
    expected = [[brute_force(model, tok, p, c) for c in row] for p, row in zip(PROMPTS, CHOICES, strict=True)]
    np.testing.assert_allclose(np.concatenate(scores), np.concatenate(expected), atol=1e-4)


def test_prefix_reuse_changes_nothing(model, tok):
    with_reuse = score_choices(model, tok, PROMPTS, CHOICES, reuse_prefix=True)
    without = score_choices(model, tok, PROMPTS, CHOICES, reuse_prefix=False)
    np.testing.assert_allclose(np.concatenate(with_reuse), np.concatenate(without), atol=1e-4)


def test_single_prompt_and_identical_prompts(model, tok):
    alone = score_choices(model, tok, PROMPTS[:1], CHOICES[:1])
    repeated = score_choices(model, tok, PROMPTS[:1] * 3, CHOICES[:1] * 3)
    for row in repeated:
        np.testing.assert_allclose(row, alone[0], atol=1e-4)
    assert alone[0][0] == pytest.approx(brute_force(model, tok, PROMPTS[0], CHOICES[0][0]), abs=1e-4)


def test_batch_composition_does_not_change_a_score(model, tok):
    batched = score_choices(model, tok, PROMPTS, CHOICES)
    alone = score_choices(model, tok, PROMPTS[1:2], CHOICES[1:2])
    np.testing.assert_allclose(batched[1], alone[0], atol=1e-4)


def test_empty_choice_is_named(model, tok):
    with pytest.raises(ValueError, match="choice '' tokenises to nothing"):
        score_choices(model, tok, PROMPTS[:1], [["approve", ""]])


def test_mismatched_lengths(model, tok):
    with pytest.raises(ValueError, match="differ in length"):
        score_choices(model, tok, PROMPTS, CHOICES[:1])
    assert score_choices(model, tok, [], []) == []


def test_common_prefix_length():
    assert common_prefix_length([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert common_prefix_length([[5], [6]]) == 0


def test_pick_choice_greedy_and_sampled():
    rng = np.random.default_rng(0)
    assert pick_choice([-3.0, -1.0, -2.0], 0.0, 1.0, rng) == 1
    draws = [pick_choice([np.log(0.25), np.log(0.75)], 1.0, 1.0, np.random.default_rng(i)) for i in range(400)]
    assert 0.65 < np.mean(draws) < 0.85
    assert {pick_choice([np.log(0.1), np.log(0.9)], 1.0, 0.5, np.random.default_rng(i)) for i in range(50)} == {1}
