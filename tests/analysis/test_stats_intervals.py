"""Intervals that do not overstate: proportions, paired differences, bounded means, and text without "±0"."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairgym.analysis.stats import (
    bounded_ci,
    clopper_pearson_ci,
    format_difference,
    format_proportion,
    format_seeds,
    k_of_n,
    paired_bootstrap,
    wilson_ci,
)


def test_wilson_interval_of_0_of_32_equals_the_hand_computed_value():
    # Wilson with k = 0: centre and half-width are both (z^2 / 2) / (n + z^2), so the upper bound is z^2 / (n + z^2);
    # z = 1.959964 (95%), z^2 = 3.841459: 3.841459 / 35.841459 = 0.1071792
    ci = wilson_ci(0, 32)
    assert ci["low"] == 0.0 and ci["high"] == pytest.approx(0.1071792, abs=1e-7)
    assert format_proportion(0, 32) == "0 of 32 (95% CI 0-0.107)"


def test_clopper_pearson_of_0_of_32_is_the_exact_binomial_bound():
    # P(0 successes) = (1 - p)^32 = 0.025 at the upper bound
    assert clopper_pearson_ci(0, 32)["high"] == pytest.approx(1 - 0.025 ** (1 / 32), rel=1e-9)
    ci = clopper_pearson_ci(16, 32)
    assert ci["low"] < 0.5 < ci["high"] and ci["high"] - 0.5 == pytest.approx(0.5 - ci["low"])


def test_proportion_errors_name_the_problem():
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson_ci(5, 3)
    assert math.isnan(wilson_ci(0, 0)["rate"])


def test_paired_interval_of_an_arm_against_itself_is_exactly_zero():
    values = np.random.default_rng(0).normal(size=200).tolist()
    ci = paired_bootstrap(values, list(values))
    assert (ci["low"], ci["mean"], ci["high"], ci["n"]) == (0.0, 0.0, 0.0, 200)
    assert format_difference(ci) == "identical on all 200 items"


def test_paired_bootstrap_drops_incomplete_pairs_and_sees_a_shift():
    a = [1.0, 2.0, None, 4.0, float("nan")] * 20
    b = [0.5, 1.5, 3.0, 3.5, 1.0] * 20
    ci = paired_bootstrap(a, b)
    assert ci["n"] == 60 and ci["mean"] == pytest.approx(0.5) and ci["low"] == ci["high"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap([1.0], [1.0, 2.0])


def test_bounded_ci_never_leaves_the_range():
    values = [0.0, 1.0, 0.06]  # a t-interval over these runs to about [-0.9, 1.6]
    t = bounded_ci(values, method="t")
    assert 0.0 <= t["low"] <= t["high"] <= 1.0 and t["clipped"]
    boot = bounded_ci(values)
    assert 0.0 <= boot["low"] <= boot["high"] <= 1.0 and not boot["clipped"]
    with pytest.raises(ValueError, match=r"must lie in \[0.0, 1.0\]"):
        bounded_ci([1.2])


def test_k_of_n_counts_by_code():
    assert k_of_n([1.0, 0.98, 1.0, None])["text"] == "2 of 3 seeds equal to the teacher"
    assert k_of_n([True, True], unit="arms", what="collapsed")["text"] == "2 of 2 arms collapsed"


def test_format_seeds_says_all_seeds_when_they_agree():
    assert format_seeds([1.0, 1.0, 1.0]) == "all 3 seeds: 1.000"
    assert format_seeds([0.352, 0.352 + 3.4e-16, 0.352]) == "all 3 seeds: 0.352"  # float noise is agreement
    assert format_seeds([0.7]) == "0.700 (1 seed)"
    assert format_seeds([0.531, 0.0, 1.0], bounds=(0.0, 1.0)).endswith("(95% CI 0 to 1, 3 seeds)")


PLUS_MINUS_ZERO = re.compile(r"±\s*0(?![.,]?\d*[1-9])")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=5), st.integers(0, 6),
       st.floats(0, 1e-6))
def test_no_formatted_interval_prints_plus_minus_zero_or_a_point_for_an_interval(values, digits, jitter):
    spread = [v + jitter * i for i, v in enumerate(values)]
    texts = [format_seeds(values, digits), format_seeds(spread, digits),
             format_difference(paired_bootstrap(values, values), digits),
             format_difference(paired_bootstrap(spread, values), digits),
             format_proportion(min(len(values), 3), 3 + len(values), digits=max(digits, 1))]
    for text in texts:
        assert "±" not in text and not PLUS_MINUS_ZERO.search(text), text
    for seeds, text in ((values, texts[0]), (spread, texts[1])):
        found = re.search(r"CI (-?[\d.]+) to (-?[\d.]+)", text)
        if found:  # seeds that differ print an interval whose two bounds differ, never a point
            assert found.group(1) != found.group(2), text
        else:
            assert text.startswith(("all ", f"{seeds[0]:.{digits}f} (1 seed)")), text
