"""The report's paired comparison of groups on a balanced run: per seed each group's value, the paired
difference and its interval, by hand."""

from __future__ import annotations

import pytest
from record_builders import DIALOGUE, dialogue_episodes, dialogue_step, episode

from fairgym.agents import make_agent
from fairgym.agents.runner import run_episodes
from fairgym.analysis.pairing import paired_differences, paired_episodes, paired_table
from fairgym.analysis.report import write_report
from fairgym.envs.records import append_episode

# toxicity per seed (one reply each): A, then B
TOXICITY = {0: (0.1, 0.4), 1: (0.2, 0.2), 2: (0.3, 0.9)}


def balanced() -> list[dict]:
    episodes = []
    for seed, values in TOXICITY.items():
        for k, (group, tox) in enumerate(zip(("A", "B"), values, strict=True)):
            ep = episode(DIALOGUE, [dialogue_step(0, group, tox)], index=2 * seed + k)
            ep.update(seed=seed, options={"group": group})
            episodes.append(ep)
    return episodes


def test_paired_differences_by_hand():
    result = paired_differences(balanced())
    assert result["groups"] == ["A", "B"] and result["seeds"] == 3
    row = next(r for r in result["rows"] if r["metric"] == "toxicity/mean")
    assert row["means"] == pytest.approx({"A": 0.2, "B": 0.5})
    diff = row["differences"]["B"]  # per seed B - A: 0.3, 0.0, 0.6
    assert diff["mean"] == pytest.approx(0.3) and (diff["above"], diff["below"], diff["seeds"]) == (2, 0, 3)
    half = 4.302652729911275 * 0.3 / 3 ** 0.5  # t(0.975, 2) x sd / sqrt(n); sd of (0.3, 0, 0.6) is 0.3
    assert (diff["low"], diff["high"]) == pytest.approx((0.3 - half, 0.3 + half))
    assert all(r["metric"] not in ("task/episodes", "task/steps") for r in result["rows"])


def test_an_incomplete_pair_is_left_out():
    episodes = balanced()[:-1]  # seed 2 lost its B episode
    groups, pairs = paired_episodes(episodes)
    assert groups == ["A", "B"] and sorted(pairs) == [0, 1]


def test_an_unbalanced_run_has_no_pairs():
    assert paired_differences(dialogue_episodes()) is None and paired_table(dialogue_episodes()) is None


def test_report_of_a_balanced_run_pairs_the_groups(tmp_path):
    folder = tmp_path / "run"
    run_episodes(DIALOGUE, make_agent("polite"), episodes=3, env_kwargs={"max_steps": 2}, out_dir=folder,
                 progress=False, balance_groups=True)
    text = write_report(folder).read_text()
    assert "## Groups on paired episodes" in text
    assert "Every seed was played once per group (3 seeds with every group of Black, white)" in text
    assert "| `toxicity/mean` |" in text and "white − Black (paired, 95% CI)" in text
    folder_unbalanced = tmp_path / "plain"
    folder_unbalanced.mkdir()
    for ep in dialogue_episodes():
        append_episode(folder_unbalanced / "episodes.jsonl", ep)
    assert "paired episodes" not in write_report(folder_unbalanced).read_text()


def test_a_difference_without_spread_is_not_printed_as_a_zero_width_interval():
    episodes = balanced()
    for ep in episodes:  # every seed: B exactly 0.1 above A
        ep["steps"][0]["outcome"]["toxicity"] = 0.2 if ep["options"]["group"] == "A" else 0.3
    _, header, rows = paired_table(episodes)
    row = next(r for r in rows if r[0] == "`toxicity/mean`")
    assert row[-1] == "+0.1, the same in all 3 seeds"
