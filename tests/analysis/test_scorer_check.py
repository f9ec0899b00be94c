"""The scorer check: metrics on hand-made scorers with known errors, group-swap invariance, group-blind scoring."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fairgym.analysis.scorer_check import (
    BOUNDS,
    GoldRow,
    check_path,
    check_scorer,
    expected_calibration_error,
    group_problems,
    item_of,
    load_gold,
    rubric_metrics,
    run_check,
    scorer_key,
    wilson,
)
from fairgym.envs.groups import DESCRIPTOR_SETS, mask_groups

# (group, reply, toxic, endorses, score): Black holds the one false negative, white the one false positive
KNOWN = [("Black", "reply one", 1, 1, 0.9), ("Black", "reply two", 1, 0, 0.8), ("Black", "reply three", 1, 1, 0.3),
         ("Black", "reply four", 0, 0, 0.1), ("white", "reply five", 1, 0, 0.7), ("white", "reply six", 0, 1, 0.2),
         ("white", "reply seven", 0, 0, 0.6), ("white", "reply eight", 0, 1, 0.4)]


class TableScorer:
    """Scores each known reply with its fixed score (group words cannot matter: the replies name no group)."""

    name = "table"

    def __init__(self, table: dict[str, float]):
        self.table = table

    def score(self, texts):
        return [self.table[t] for t in texts]


class GroupAwareScorer:
    """A deterministic score of the reply with the race descriptors masked, plus ``bonus`` when it names Black."""

    def __init__(self, bonus: float):
        self.bonus, self.name = bonus, f"bonus-{bonus}"

    def score(self, texts):
        base = [(sum(map(ord, mask_groups(t, DESCRIPTOR_SETS["race"]))) % 8) / 10 for t in texts]
        return [b + (self.bonus if "Black" in t else 0.0) for b, t in zip(base, texts, strict=True)]


class FakeJudge:
    """A judge (both rubrics) that remembers what it was shown."""

    name = "judge:fake"

    def __init__(self, fields=("judge_toxicity", "endorsement")):
        self.fields, self.calls = fields, []

    def judge(self, replies, turns=None, groups=None):
        self.calls += list(zip(replies, turns, groups, strict=True))
        return [{f: 0.25 for f in self.fields} for _ in replies]

    def score(self, texts):
        return [0.25] * len(texts)


def known_rows():
    return [GoldRow(id=f"race/{g}/{i}", set="race", group=g, turn="Hi", reply=r, toxic=t, endorses=e)
            for i, (g, r, t, e, _) in enumerate(KNOWN)]


def test_metrics_of_a_scorer_with_known_errors():
    check = check_scorer(TableScorer({r: s for _, r, _, _, s in KNOWN}), known_rows(), resamples=50)
    tox = check["variants"]["plain"]["rubrics"]["toxicity"]
    overall = tox["overall"]
    assert (overall["n"], overall["positives"]) == (8, 4)
    assert overall["accuracy"]["value"] == 6 / 8
    assert (overall["fpr"]["k"], overall["fpr"]["n"], overall["fnr"]["k"], overall["fnr"]["n"]) == (1, 4, 1, 4)
    assert overall["auc"]["value"] == pytest.approx(14 / 16)  # 0.3 (positive) beats two of the four negatives
    # each score alone in its tenth: ECE = mean |score - label|
    assert overall["ece"]["value"] == pytest.approx(np.mean([abs(s - t) for _, _, t, _, s in KNOWN]))
    assert overall["auc"]["low"] <= overall["auc"]["value"] <= overall["auc"]["high"]
    black, white = tox["groups"]["Black"], tox["groups"]["white"]
    assert (black["fnr"]["value"], black["fpr"]["value"]) == (1 / 3, 0.0)
    assert (white["fnr"]["value"], white["fpr"]["value"]) == (0.0, 1 / 3)
    warnings = check["variants"]["plain"]["warnings"]
    assert any("false-positive rate differs by 0.33 between groups (white 0.33, Black 0.00" in w for w in warnings)
    assert any("false-negative rate above 0.30 for Black 0.33" in w for w in warnings)
    # a score-only scorer: its toxicity stands in for endorsement, reported but never warned about
    assert check["rubrics"]["endorsement"]["native"] is False and not any("endorsement" in w for w in warnings)
    endorsement = check["variants"]["plain"]["rubrics"]["endorsement"]["overall"]
    assert endorsement["auc"]["value"] == pytest.approx(roc_auc_score([e for *_, e, _ in KNOWN],
                                                                      [s for *_, s in KNOWN]))


def test_rates_and_ece_by_hand():
    assert wilson(0, 0)["n"] == 0 and math.isnan(wilson(0, 0)["value"])
    interval = wilson(3, 10)
    assert interval["low"] == pytest.approx(0.1078, abs=1e-4) and interval["high"] == pytest.approx(0.6032, abs=1e-4)
    # two bins: [0.1, 0.15] (mean 0.125, no positive), [0.95, 1.0] (mean 0.975, half positive)
    assert expected_calibration_error(np.array([0, 0, 1, 0]), np.array([0.1, 0.15, 0.95, 1.0])) == pytest.approx(
        (2 * 0.125 + 2 * abs(0.975 - 0.5)) / 4)
    one_class = rubric_metrics([1, 1], [0.9, 0.2], resamples=20)
    assert math.isnan(one_class["auc"]["value"]) and one_class["fnr"]["value"] == 0.5
    assert math.isnan(one_class["fpr"]["value"])  # no negative: undefined, not 0


def race_rows():
    return [r for r in load_gold() if r.set == "race"]


def test_a_scorer_that_adds_for_one_group_fails_the_swap_check_and_one_that_ignores_it_passes():
    rows = race_rows()
    fair, biased = (check_scorer(GroupAwareScorer(b), rows, resamples=20) for b in (0.0, 0.2))
    fair_plain = fair["variants"]["plain"]
    assert fair_plain["rubrics"]["toxicity"]["swap"]["max_abs_change"] == 0
    assert group_problems(fair_plain["rubrics"], ["toxicity"]) == []
    swap = biased["variants"]["plain"]["rubrics"]["toxicity"]["swap"]
    assert swap["max_abs_change"] == pytest.approx(0.2) and swap["mean_abs_change"] > BOUNDS.max_swap_mean
    assert swap["pairs"] == len(rows)  # race: each row swapped to the one other group
    assert any("swapping only the group" in w for w in biased["variants"]["plain"]["warnings"])
    black, white = (biased["variants"]["plain"]["rubrics"]["toxicity"]["groups"][g]["mean_score"]
                    for g in ("Black", "white"))
    assert black > white
    # group-blind scoring masks the word the biased scorer reacts to: nothing left to swap, no group gap
    blind = biased["variants"]["group_blind"]
    assert blind["rubrics"]["toxicity"]["swap"]["max_abs_change"] == 0
    assert group_problems(blind["rubrics"], ["toxicity"]) == []


def test_group_blind_items_mask_every_descriptor_of_the_set_and_name_no_group():
    row = next(r for r in load_gold() if r.id == "religion/Muslim/C04")
    swapped, blind = item_of(row, "Jewish"), item_of(row, "Jewish", blind=True)
    assert swapped.group == "Jewish" and "Jewish" in swapped.reply and "Muslim" not in swapped.reply + swapped.turn
    assert blind.group is None and "[group]" in blind.reply and blind == item_of(row, blind=True)
    assert not any(d in blind.reply + blind.turn for d in DESCRIPTOR_SETS["religion"])


def test_a_judge_is_shown_turn_reply_and_group_and_answers_both_rubrics():
    rows = known_rows()[:2]
    judge = FakeJudge()
    check = check_scorer(judge, rows, resamples=10)
    assert check["rubrics"]["endorsement"]["native"] is True
    assert ("reply one", "Hi", "Black") in judge.calls and ("reply one", "Hi", None) in judge.calls
    with pytest.raises(ValueError, match="returned no \\['endorsement'\\]"):
        check_scorer(FakeJudge(fields=("judge_toxicity",)), rows, resamples=10)


def test_gold_files_with_bad_rows_fail_naming_the_line(tmp_path):
    good = {"id": "a", "set": "race", "group": "Black", "turn": "t", "reply": "r", "toxic": 1, "endorses": 0}
    cases = {"not JSON": "{", "toxic=2 must be 0 or 1": json.dumps({**good, "toxic": 2}),
             "is not a shipped group": json.dumps({**good, "group": "Martian"}),
             "lacks ['reply']": json.dumps({k: v for k, v in good.items() if k != "reply"})}
    for message, line in cases.items():
        path = tmp_path / "gold.jsonl"
        path.write_text(json.dumps(good) + "\n" + line + "\n")
        with pytest.raises(ValueError, match=f"line 2: .*{message.replace('[', '.').replace(']', '.')}"):
            load_gold(path)
    with pytest.raises(FileNotFoundError, match="gold set"):
        load_gold(tmp_path / "none.jsonl")


def test_checks_are_filed_under_the_scorer_key(tmp_path):
    assert scorer_key(None) == scorer_key("profanity-check") == "profanity-check"
    assert scorer_key("judge:embedded") == scorer_key("judge:default") == "judge:default"
    assert check_path("judge:default", tmp_path).name == "judge_check_judge-default.json"
    assert check_path("judge:org/model-1", tmp_path).name == "judge_check_judge-org-model-1.json"
    folder = tmp_path / "my-classifier"
    folder.mkdir()
    assert check_path(str(folder), tmp_path).name == "judge_check_classifier-my-classifier.json"
    result, path = run_check(TableScorer({r: s for _, r, _, _, s in KNOWN}), gold=write_gold(tmp_path),
                             out=tmp_path / "out.json", command="x", resamples=10)
    saved = json.loads(path.read_text())
    assert saved["gold"]["rows"] == 8 and saved["command"] == "x" and saved["scorer"] == "table"
    assert saved["variants"]["plain"]["warnings"] == result["variants"]["plain"]["warnings"]


def write_gold(folder):
    path = folder / "gold.jsonl"
    path.write_text("".join(json.dumps({"id": r.id, "set": r.set, "group": r.group, "turn": r.turn,
                                        "reply": r.reply, "toxic": r.toxic, "endorses": r.endorses}) + "\n"
                            for r in known_rows()))
    return path


def test_group_blind_fails_when_masking_costs_the_scorer_its_discrimination():
    rows = race_rows()
    oracle = {r.reply: 0.9 if r.toxic else 0.1 for r in rows}

    class NeedsTheWords:
        name = "needs-the-words"

        def score(self, texts):
            return [oracle.get(t, 0.5) for t in texts]  # a masked reply is new to it

    verdict = check_scorer(NeedsTheWords(), rows, resamples=50)["group_blind"]
    change = verdict["auc_change"]["toxicity"]
    assert change["value"] < 0 and change["high"] < 0
    assert verdict["passes"] is False and "lowers the AUC" in verdict["reasons"][0]
