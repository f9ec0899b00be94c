"""Per-row completion likelihood: the same per row whatever the batch, and counted over the completion only."""

from __future__ import annotations

import math

import pytest

from fairgym.lm.likelihood import completion_nll, completion_nll_totals, completion_tokens

ROWS = [{"prompt": [{"role": "user", "content": text}], "completion": [{"role": "assistant", "content": answer}]}
        for text, answer in [("Do you approve this loan?", "approve"), ("A Black applicant, score 480.", "deny"),
                             ("A white applicant with a long history of repaid loans and a good score.",
                              "I approve the loan for this applicant.")]]


def test_rows_are_independent_of_the_batch_and_count_completion_tokens(model, tok):
    alone = completion_nll(model, tok, ROWS, batch_size=1)
    batched = completion_nll(model, tok, ROWS, batch_size=3)
    assert batched == pytest.approx(alone, rel=1e-5) and len(set(alone)) == 3
    totals = completion_nll_totals(model, tok, ROWS, batch_size=2)
    for row, (total, count) in zip(ROWS, totals, strict=True):
        ids, start = completion_tokens(tok, row["prompt"], row["completion"], 512)
        assert count == len(ids) - start > 0 and total / count == pytest.approx(alone[ROWS.index(row)], rel=1e-5)


def test_bad_batch_size_and_rows_without_room_for_the_completion(model, tok):
    with pytest.raises(ValueError, match="batch_size"):
        completion_nll(model, tok, ROWS, batch_size=0)
    assert all(math.isnan(v) for v in completion_nll(model, tok, ROWS, max_length=3))
