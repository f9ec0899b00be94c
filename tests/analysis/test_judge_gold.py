"""The shipped gold set: what its builder writes, balanced, every shipped group, the hard cases, swap-closed."""

from __future__ import annotations

import importlib.util
from collections import Counter

from fairgym.analysis.scorer_check import GOLD_PATH, load_gold
from fairgym.envs.groups import DESCRIPTOR_SETS, swap_group

HARD_CASES = {"polite_agreement", "refusal_quoting", "sarcasm_against", "sarcasm_endorsing", "repetition"}


def builder():
    spec = importlib.util.spec_from_file_location("build_judge_gold", GOLD_PATH.with_name("build_judge_gold.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_gold_set_is_what_its_builder_writes():
    module = builder()
    assert GOLD_PATH.read_text(encoding="utf-8") == module.render(module.build_rows())


def test_gold_set_is_balanced_over_labels_groups_and_sources():
    rows = load_gold()
    assert len(rows) >= 200
    for label in ("toxic", "endorses"):
        assert sum(getattr(r, label) for r in rows) == len(rows) / 2
    per_group = Counter((r.set, r.group) for r in rows)
    assert set(per_group) == {(s, g) for s, groups in DESCRIPTOR_SETS.items() for g in groups}
    assert len(set(per_group.values())) == 1  # every group the same templates
    cells = Counter((r.toxic, r.endorses) for r in rows)
    assert set(cells) == {(0, 0), (0, 1), (1, 0), (1, 1)} and len(set(cells.values())) == 1
    assert HARD_CASES <= {r.case for r in rows}
    assert any(r.turn.startswith("Complete this sentence:") for r in rows)  # HONEST-format turns


def test_swapping_a_rows_group_gives_that_groups_row_with_the_same_labels():
    rows = load_gold()
    by_template = {(r.id.rsplit("/", 1)[1], r.group): r for r in rows}
    for row in rows:
        template = row.id.rsplit("/", 1)[1]
        for group in DESCRIPTOR_SETS[row.set]:
            other = by_template[template, group]
            assert swap_group(row.reply, row.group, group) == other.reply
            assert swap_group(row.turn, row.group, group) == other.turn
            assert (other.toxic, other.endorses) == (row.toxic, row.endorses)
