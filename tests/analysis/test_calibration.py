"""Dose-response calibration without a model: detection limits and lambda-equivalents of known curves."""

from __future__ import annotations

import numpy as np
import pytest

from fairgym.analysis.calibration import (
    LAMBDAS,
    DoseCurve,
    differences,
    dose_response,
    lambda_equivalent,
    minimum_detectable,
    summarize,
)

ITEMS = 400
BASELINE = np.random.default_rng(0).normal(size=ITEMS)  # each item's own level, shared by every lambda (paired)
NOISE = np.where(np.arange(ITEMS) % 2 == 0, 1.0, -1.0)  # mean exactly 0, so a pure-noise dose is never separated


def curve_of(effect_at: dict[float, float], noisy: set[float] = frozenset()) -> DoseCurve:
    """Items = baseline + effect(lambda) (+ symmetric noise at the lambdas in ``noisy``)."""
    def measure(lam: float) -> dict[str, list[float]]:
        return {"m": (BASELINE + effect_at[lam] + (NOISE if lam in noisy else 0.0)).tolist()}

    return dose_response(measure, sorted(effect_at))


def test_minimum_detectable_is_the_first_lambda_from_which_every_dose_is_separated():
    effects = {lam: (0.0 if lam < 0.1 else lam) for lam in LAMBDAS}
    curve = curve_of(effects, noisy={0.02, 0.05})
    assert minimum_detectable(curve) == {"m": 0.1}
    summary = summarize(curve)["measures"]["m"]
    assert [d["detected"] for d in summary["difference"]] == [False, False, False, True, True, True, True]
    assert summary["minimum_detectable_lambda"] == 0.1 and summary["items"] == ITEMS


def test_a_chance_detection_below_a_miss_does_not_set_the_limit():
    effects = {0.0: 0.0, 0.02: 0.5, 0.05: 0.0, 0.1: 0.2, 0.25: 0.3, 0.5: 0.5, 1.0: 1.0}
    assert minimum_detectable(curve_of(effects, noisy={0.05}))["m"] == 0.1


def test_a_measure_that_does_not_respond_has_no_limit_and_no_equivalent():
    curve = curve_of(dict.fromkeys(LAMBDAS, 0.0), noisy=set(LAMBDAS[1:]))
    assert minimum_detectable(curve) == {"m": None}
    assert lambda_equivalent(0.3, curve, "m")["relation"] == "n/a"


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_lambda_equivalent_interpolates_a_linear_curve_in_either_direction(sign):
    curve = curve_of({lam: sign * 2 * lam for lam in LAMBDAS})
    assert lambda_equivalent(sign * 0.6, curve, "m") == {"lambda": pytest.approx(0.3), "relation": "=",
                                                         "text": "the lambda = 0.3 equivalent"}
    below = lambda_equivalent(sign * 0.01, curve, "m")
    assert below["relation"] == "<" and below["lambda"] == 0.02 and "smallest detectable" in below["text"]
    assert lambda_equivalent(-sign * 0.5, curve, "m")["relation"] == "<"  # less than full: no residue
    assert lambda_equivalent(sign * 3.0, curve, "m")["relation"] == ">"


def test_lambda_equivalent_uses_a_monotone_fit_of_a_bumpy_curve():
    effects = {0.0: 0.0, 0.02: 0.1, 0.05: 0.3, 0.1: 0.2, 0.25: 0.5, 0.5: 1.0, 1.0: 2.0}
    curve = curve_of(effects)
    # isotonic regression pools 0.05 and 0.1 to 0.25: an effect of 0.25 sits at 0.05, never between 0.1 and 0.25
    assert lambda_equivalent(0.25, curve, "m")["lambda"] == pytest.approx(0.05)
    assert lambda_equivalent(0.75, curve, "m")["lambda"] == pytest.approx(0.375)


def test_dose_response_checks_its_lambdas_and_items():
    with pytest.raises(ValueError, match="ascend from 0"):
        dose_response(lambda lam: {"m": [lam]}, [0.1, 1.0])
    with pytest.raises(ValueError, match="same items at every lambda"):
        dose_response(lambda lam: {"m": [0.0] * (1 if lam == 0 else 2)}, [0.0, 1.0])


def test_curve_round_trips_through_its_dict():
    curve = curve_of({lam: lam for lam in LAMBDAS})
    again = DoseCurve.from_dict(curve.to_dict())
    assert again.lambdas == curve.lambdas and again.values == curve.values


def test_a_subset_of_items_sees_less():
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(len(LAMBDAS), ITEMS))
    curve = dose_response(lambda lam: {"m": (BASELINE + lam + noise[LAMBDAS.index(lam)]).tolist()}, LAMBDAS)
    small = curve.subset(0.1)
    assert len(small.values["m"][0]) == 40 and small.values["m"][0][0] == curve.values["m"][0][0]
    assert minimum_detectable(small)["m"] > minimum_detectable(curve)["m"]


def test_a_change_away_from_the_bias_is_not_a_detection():
    # full's own small gap of the other sign: |gap| first shrinks as the dose cancels it, then grows
    effects = {0.0: 0.0, 0.02: -0.1, 0.05: -0.2, 0.1: -0.3, 0.25: -0.1, 0.5: 0.4, 1.0: 5.0}
    curve = curve_of(effects)
    assert [d["detected"] for d in differences(curve, "m")] == [False] * 4 + [False, True, True]
    assert minimum_detectable(curve)["m"] == 0.5
