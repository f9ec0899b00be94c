"""``--help`` works on every command and subcommand, and lists the config keys it accepts with their defaults."""

from __future__ import annotations

import pytest

from fairgym.commands import COMMANDS, main
from fairgym.commands.config_help import attribute_docs, config_keys, first_sentence

SUBCOMMANDS = [[name] for name in COMMANDS] + [["envs", "list"], ["envs", "check"], ["judge", "check"]] + [
    ["train", recipe] for recipe in ("sft", "grpo", "dpo", "grpo-episode")]


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=" ".join)
def test_help_works_everywhere(words, capsys):
    with pytest.raises(SystemExit) as done:
        main([*words, "--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("usage: fairgym")


@pytest.mark.parametrize(("words", "expected"), [
    (["run"], ["episodes = 20: number of episodes", "balance_groups = false", "llm.decide = null",
               "fairgym/Lending-v0: max_steps=20"]),
    (["train"], ["learning_rate = 0.0001: AdamW learning rate.", "alpha = 2r: the LoRA parametrization", "rank = 8"]),
    (["train", "sft"], ["learning_rate = 0.0001: AdamW learning rate.", "recipe = sft"]),
    (["sweep"], ["ranks = [1, 8]", "eval.episodes = 8", "diagnostics.decisions = 32", "train.<key>: any TrainConfig"]),
    (["envs", "check"], ["fairgym/Dialogue-v1: max_steps=6", "templates_path=dialogue_templates.json (shipped)"]),
])
def test_help_lists_config_keys_with_defaults(words, expected, capsys):
    with pytest.raises(SystemExit):
        main([*words, "--help"])
    out = " ".join(capsys.readouterr().out.split())  # unwrapped
    for text in expected:
        assert text in out, text


def test_keys_come_from_the_docstring_and_the_fields():
    from fairgym.agents.runs import RunConfig

    docs = attribute_docs(RunConfig)
    assert set(docs) >= {"env", "agent", "episodes", "llm", "balance_groups"}
    listed = "\n".join(config_keys(RunConfig))
    assert "  seed = 0: base seed of envs and agent." in listed


@pytest.mark.parametrize(("text", "sentence"), [
    ("LoRA rank r (> 0). Ignored by full.", "LoRA rank r (> 0)."),
    ("~10x after Schulman et al. 2025, a paper. More.", "~10x after Schulman et al. 2025, a paper."),
    ("seeds ``seed .. seed + n``.", "seeds seed .. seed + n."),
    ("e.g. this one", "e.g. this one"),
])
def test_first_sentence(text, sentence):
    assert first_sentence(text) == sentence


def test_overrides_may_follow_the_options(capsys):
    """KEY=VALUE after an option joins the overrides (argparse alone says "unrecognized arguments"); anything else
    unknown is still refused."""
    from fairgym.commands import build_parser, parse

    args = parse(build_parser(), ["sweep", "demo.yaml", "seeds=[0]", "--out", "x", "ranks=[1,2]", "--rates-only"])
    assert args.overrides == ["seeds=[0]", "ranks=[1,2]"] and args.out == "x" and args.rates_only
    with pytest.raises(SystemExit):
        parse(build_parser(), ["sweep", "demo.yaml", "--out", "x", "--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse(build_parser(), ["report", "runs/x", "seeds=[0]"])  # report takes no overrides
