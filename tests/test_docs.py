"""The documentation site's generators (docs/docgen) and the README: env pages come from complete docstrings, every
result file has a known command, markers and pending pages behave, and the README stays short with working links.

``make docs`` builds the site itself with ``mkdocs build --strict``; these tests need no mkdocs."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import gymnasium as gym
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))

docgen = importlib.import_module("docgen")
common = importlib.import_module("docgen.common")
envs_pages = importlib.import_module("docgen.envs")
results = importlib.import_module("docgen.results")
hooks = importlib.import_module("hooks")


@pytest.mark.parametrize("env_id", envs_pages.env_ids())
def test_each_env_page_holds_every_argument_section_and_headline_metric(env_id):
    from fairgym.envs import env_arguments, env_profile

    page = envs_pages.env_page(env_id)
    for argument in env_arguments(env_id):
        assert re.search(rf"^\| `{argument}` \|", page, re.MULTILINE), argument
    for section in envs_pages.ENV_SECTIONS:
        assert f"\n## {section}\n" in page
    for key, _ in env_profile(env_id).headline:
        assert f"`{key}`" in page


def test_an_env_argument_missing_from_the_docstring_fails_the_page():
    from fairgym.envs.lending import LendingEnv

    class Undocumented(LendingEnv):
        __doc__ = LendingEnv.__doc__

        def __init__(self, *, max_steps: int = 20, secret_knob: float = 0.5, **kwargs) -> None:
            super().__init__(max_steps=max_steps, **kwargs)

    gym.register(id="fairgym/DocsUndocumented-v0", entry_point=Undocumented)
    try:
        with pytest.raises(common.DocsError, match="secret_knob"):
            envs_pages.arguments_table("fairgym/DocsUndocumented-v0")
    finally:
        gym.registry.pop("fairgym/DocsUndocumented-v0")


def test_metric_keys_fold_groups_and_say_which_have_trajectories():
    keys = {k.key: k for k in importlib.import_module("docgen.metrics").family_keys("fairgym/Lending-v0")}
    assert keys["fairness/selection_rate/<group>"].scope == "per group"
    assert keys["fairness/demographic_parity_difference"].trajectory == "per turn + cumulative"
    assert not any(key.endswith(("/Black", "/white")) for key in keys)


def test_every_committed_result_has_a_command_and_a_commit():
    names = [p.name for p in results.RESULTS.glob("*.json")] + results.sweep_folders()
    assert names
    for name in names:
        assert results.command_for(name).strip()
    page = results.sweep_page(results.sweep_folders()[0])
    assert re.search(r"summary\.json` at `([0-9a-f]{7,}|not committed)", page)


def test_a_result_without_a_known_command_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    (tmp_path / "mystery_numbers.json").write_text("{}")
    with pytest.raises(common.DocsError, match="commands.yaml"):
        results.command_for("mystery_numbers.json")


def test_markers_are_filled_and_an_unknown_one_fails():
    text = "a\n<!-- generated: x -->\nb"
    assert common.fill_markers(text, {"x": lambda: "FILLED\n"}, "p.md") == "a\nFILLED\nb"
    with pytest.raises(common.DocsError, match="unknown marker"):
        common.fill_markers(text, {"y": lambda: ""}, "p.md")


def test_nav_leaves_out_pending_pages_not_there_yet_and_expands_generated_entries(tmp_path):
    (tmp_path / "here.md").write_text("# here")
    nav = [{"Here": "here.md"}, {"Later": "later.md"}, {"Group": ["auto:x", {"Later too": "later.md"}]}]
    out = hooks._expand(nav, tmp_path, {"later.md"}, {"x": [{"Generated": "gen.md"}]})
    assert out == [{"Here": "here.md"}, {"Group": [{"Generated": "gen.md"}]}]


def test_readme_is_short_starts_with_the_two_commands_and_links_to_files_that_exist():
    readme = (ROOT / "README.md").read_text()
    lines = readme.splitlines()
    assert len(lines) < 200
    commands = [line.split("#")[0].strip() for line in lines[:6] if line.startswith("make ")]
    assert commands == ["make demo", "make test"]
    links = re.findall(r"\]\(((?!https?:)[^)#]+)(?:#[^)]*)?\)", readme)
    missing = [link for link in links if not (ROOT / link).exists()]
    assert links and not missing, missing
