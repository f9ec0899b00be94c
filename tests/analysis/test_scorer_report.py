"""What reports say about their scorers: the committed check quoted, warnings beyond the bounds, unchecked ones."""

from __future__ import annotations

from record_builders import DIALOGUE, dialogue_episodes, episode, judged_episodes, step
from test_scorer_check import KNOWN, TableScorer, known_rows

from fairgym.analysis.scorer_check import CHECKS_DIR, GOLD_PATH, check_path, check_scorer, file_sha256
from fairgym.analysis.scorer_report import (
    check_table,
    read_check,
    scorer_markdown,
    scorer_warning,
    scorers_used,
)
from fairgym.runfiles import write_json


def blind_step(turn, group, blind):
    return step(turn, group, {"reply": "hi", "toxicity": 0.1, "phase": "neutral", "group_blind": blind})


def file_check(folder, scorer, spec):
    result = {**check_scorer(scorer, known_rows(), resamples=10), "scorer": spec, "gold": {"rows": 8}}
    write_json(check_path(spec, folder), result)
    return result


def test_warning_names_what_exceeds_the_bounds_for_the_variant_used(tmp_path):
    result = file_check(tmp_path, TableScorer({r: s for _, r, _, _, s in KNOWN}), "profanity-check")
    warning = scorer_warning("profanity-check", group_blind=False, checks_dir=tmp_path)
    assert warning.startswith("scorer `profanity-check` (scored as written) exceeds the check's bounds")
    assert result["variants"]["plain"]["warnings"][0] in warning and "judge_check_profanity-check.json" in warning
    assert "scored group-blind" in scorer_warning(None, group_blind=True, checks_dir=tmp_path)


def test_a_scorer_within_every_bound_gets_no_warning_and_an_unchecked_one_does(tmp_path):
    perfect = TableScorer({r: 0.9 if t else 0.1 for _, r, t, _, _ in KNOWN})
    file_check(tmp_path, perfect, "judge:default")
    assert scorer_warning("judge:embedded", checks_dir=tmp_path) is None  # an alias of the same judge
    unchecked = scorer_warning("judge:some/model", checks_dir=tmp_path)
    assert "was not checked" in unchecked and "fairgym judge check judge:some/model" in unchecked
    assert read_check("judge:some/model", tmp_path) is None


def test_scorers_used_read_from_records():
    assert [(u.spec, u.fields, u.group_blind) for u in scorers_used(dialogue_episodes())] == [
        ("profanity-check", ("toxicity",), None)]
    judged = [dict(ep, env_kwargs={"toxicity_scorer": "judge:default"}) for ep in judged_episodes()]
    assert [(u.spec, u.fields) for u in scorers_used(judged)] == [
        ("profanity-check", ("toxicity",)), ("judge:default", ("judge_toxicity", "endorsement"))]
    blind = [episode(DIALOGUE, [blind_step(0, "A", True)]), episode(DIALOGUE, [blind_step(0, "A", False)], index=1)]
    assert [u.variant for u in scorers_used(blind)] == ["group_blind", "plain"]
    assert scorers_used([episode(DIALOGUE, [step(0, "A", {"approved": True})])]) == []


def test_markdown_quotes_the_check_or_says_unchecked(tmp_path):
    file_check(tmp_path, TableScorer({r: s for _, r, _, _, s in KNOWN}), "profanity-check")
    text = scorer_markdown([episode(DIALOGUE, [blind_step(0, "A", True)],
                                    env_kwargs={"toxicity_scorer": "profanity-check"})], tmp_path)
    assert "`profanity-check` scores `toxicity`, scored group-blind. Checked on fairgym's gold set (8 rows" in text
    assert "toxicity: AUC 0.875" in text and "**Warning:**" in text
    unchecked = scorer_markdown([episode(DIALOGUE, [blind_step(0, "A", True)], env_kwargs={"toxicity_scorer": "x"})],
                                tmp_path)
    assert "`x` scores `toxicity`" in unchecked and "was not checked" in unchecked and "Checked on" not in unchecked


def test_committed_checks_of_the_shipped_scorers_are_quoted():
    for spec in ("profanity-check", "judge:default"):
        result = read_check(spec, CHECKS_DIR)
        assert result is not None, f"no committed check for {spec}: run `fairgym judge check {spec}`"
        assert result["gold"]["rows"] >= 200 and result["command"].startswith(f"fairgym judge check {spec}")
        assert result["gold"]["sha256"] == file_sha256(GOLD_PATH), f"gold set changed: rerun {result['command']}"
        assert "== group_blind" in check_table(result)


def test_run_and_sweep_reports_name_their_scorers(tmp_path):
    from test_report import write_run

    from fairgym.analysis.report import write_report
    from fairgym.analysis.sweep_report import report_text
    from fairgym.envs.records import append_episode
    from fairgym.runfiles import env_folder

    text = write_report(write_run(tmp_path / "run", dialogue_episodes())).read_text()
    assert "## Scorers" in text and "`profanity-check` scores `toxicity`" in text
    assert text.index("## Scorers") < text.index("## Per group")
    arm_dir = tmp_path / "sweep" / "base"
    (arm_dir / env_folder(DIALOGUE)).mkdir(parents=True)
    for ep in dialogue_episodes():
        append_episode(arm_dir / env_folder(DIALOGUE) / "episodes.jsonl", ep)
    sweep = {"dir": tmp_path / "sweep", "config": {"name": "s", "eval": {"envs": [DIALOGUE]}}, "diagnostics": {},
             "learning_rates": {}, "arms": [{"name": "base", "label": "base", "method": "base", "state": "done",
                                              "dir": arm_dir, "metrics": {DIALOGUE: {"toxicity/mean": 0.3}}}]}
    assert "## Scorers" in report_text(sweep, {}) and "`profanity-check`" in report_text(sweep, {})


def test_shipped_scorers_default_to_group_blind_exactly_where_their_check_says_it_passes():
    from fairgym.envs.toxicity import ProfanityCheckScorer
    from fairgym.lm.judge import JudgeScorer

    for spec, cls in (("profanity-check", ProfanityCheckScorer), ("judge:default", JudgeScorer)):
        assert cls.group_blind is read_check(spec, CHECKS_DIR)["group_blind"]["passes"], spec
