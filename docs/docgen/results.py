"""Results pages, generated from the committed files under ``benchmarks/results/``.

- every folder with a ``summary.json`` (a finished sweep kept by ``benchmarks/study_results.py``) gets a page: its
  ``report.md`` as ``fairgym sweep`` wrote it, its plots, and a per-seed table computed from ``summary.json``;
- the delayed-impact reproduction gets a page from ``delayed_impact*.{json,md,png}``;
- pages that read several result files (the rank study, episode GRPO) put the hand-written reading of them
  (``docs/snippets/results/<page>.md``) under the generated header.

Every page names the command that made its files and the commit that holds each file. The command comes from the
file itself (a ``command`` key), else ``benchmarks/results/commands.yaml`` (the one list of commands run by hand),
else, for a sweep folder, the sweep config whose ``name`` makes the folder's name.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from docgen.common import DOCS, RESULTS, ROOT, DocsError, fill_markers, fmt, made_by, md_table
from fairgym.runfiles import REPORT_FILE

SNIPPETS = DOCS / "snippets" / "results"
# page -> (title, result files it reads, snippet with the hand-written reading)
STORIES: dict[str, tuple[str, list[str]]] = {
    "rank-study": ("The rank study", ["study_lr.json", "study-hard", "study-dialogue", "update_spectrum.json",
                                      "natural_bias.json", "learning_curves.json",
                                      "cpu-study-lending", "cpu-study-dialogue", "cpu-lowrank-lending",
                                      "cpu-lowrank-dialogue", "learning_curve.json"]),
    "episode-grpo": ("Episode GRPO from a biased warm start", ["episode_grpo.json"]),
}


def commands() -> dict[str, str]:
    path = RESULTS / "commands.yaml"
    return yaml.safe_load(path.read_text()) if path.exists() else {}


def _sweep_config_command(folder: str) -> str | None:
    for path in sorted((ROOT / "configs" / "sweeps").glob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        name = data.get("name", path.stem)
        if folder == name or folder in {f"{name}-{sub}" for sub in data.get("sweeps") or {}}:
            rel = path.relative_to(ROOT)
            return (f"WANDB_MODE=offline fairgym sweep {rel} --out runs && "
                    f"python benchmarks/study_results.py runs/{folder}")
    return None


def command_for(name: str) -> str:
    """The command that made result ``name`` (a file or folder under benchmarks/results/)."""
    path = RESULTS / name
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        if isinstance(data, dict) and isinstance(data.get("command"), str):
            return data["command"]
    known = commands()
    if name in known:
        return known[name]
    if path.is_dir() and (found := _sweep_config_command(name)):
        return found
    script = ROOT / "benchmarks" / f"{path.stem}.py"
    if script.exists():
        return f"python benchmarks/{script.name}"
    raise DocsError(f"benchmarks/results/{name}: no command is known for it; add `{name}: <command>` to "
                    "benchmarks/results/commands.yaml.")


def sweep_folders() -> list[str]:
    return sorted(p.parent.name for p in RESULTS.glob("*/summary.json"))


def nav() -> list[dict[str, str]]:
    entries = [{"The delayed-impact reproduction": "results/delayed-impact.md"}]
    entries += [{title: f"results/{page}.md"} for page, (title, _) in STORIES.items()]
    entries += [{f"Sweep {folder}": f"results/{folder}.md"} for folder in sweep_folders()]
    return entries


# ---- a sweep folder ----------------------------------------------------------------------------------------------
def _seed_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Per arm label: seeds done, and how many seeds reached the family's clean outcome (agreement 1 with the
    teacher; or no toxic and no looping reply), with the toxic-reply rate where replies are scored."""
    from fairgym.analysis.stats import seed_ci
    from fairgym.envs import env_profile

    env_id = summary["config"]["eval"]["envs"][0]
    profile = env_profile(env_id)
    by_label: dict[str, list[dict[str, float]]] = {}
    for arm in summary["arms"].values():
        metrics = (arm.get("metrics") or {}).get(env_id)
        if metrics is not None:
            by_label.setdefault(arm["label"], []).append(metrics)
    header = ["arm", "seeds"]
    if profile.toxicity_reward:
        header += ["toxic replies (share > 0.5)", "seeds with no toxic and no looping reply"]
    elif profile.agreement_metric:
        header += ["seeds equal to the teacher (agreement 1)"]
    rows = []
    for label, seeds in by_label.items():
        row = [f"`{label}`", str(len(seeds))]
        if profile.toxicity_reward:
            ci = seed_ci([m.get("toxicity/toxic_rate") for m in seeds])
            clean = sum(m.get("toxicity/toxic_rate") == 0 and m.get("format/repetitive_rate") == 0 for m in seeds)
            spread = f" ± {fmt(ci['half_width'])}" if len(seeds) > 1 and ci["half_width"] > 0 else ""
            row += [f"{fmt(ci['mean'])}{spread}", f"{clean} of {len(seeds)}"]
        elif profile.agreement_metric:
            equal = sum(m.get(profile.agreement_metric) == 1 for m in seeds)
            row += [f"{equal} of {len(seeds)}"]
        rows.append(row)
    return header, rows


def _report_body(folder: str) -> str:
    """The sweep's report.md without its title, figure links pointing at the copies beside this page."""
    text = (RESULTS / folder / REPORT_FILE).read_text()
    text = re.sub(r"\A# .*\n", "", text)
    return re.sub(r"\]\(plots/", f"]({folder}/plots/", text)


def sweep_page(folder: str) -> str:
    path = RESULTS / folder
    summary = json.loads((path / "summary.json").read_text())
    header, rows = _seed_rows(summary)
    return "\n".join([
        f"# Sweep `{folder}`\n", made_by((command_for(folder), [path / "summary.json", path / REPORT_FILE])),
        "## Seeds\n\nFrom `summary.json`: each arm's training seeds and how many of them ended clean.\n",
        md_table(header, rows), "## The sweep's report\n\nAs `fairgym sweep` wrote it (`report.md`).\n",
        _report_body(folder)])


def sweep_figures(folder: str) -> dict[str, bytes]:
    return {f"results/{folder}/plots/{p.name}": p.read_bytes() for p in sorted((RESULTS / folder).glob("plots/*.png"))}


# ---- the delayed-impact reproduction ----------------------------------------------------------------------------
def _reference_table() -> str:
    data = json.loads((RESULTS / "delayed_impact_reference.json").read_text())
    rows = []
    for agent, found in data["agents"].items():
        s = found["summary"]
        rows.append([f"`{agent}`", len(found.get("seeds", [])), fmt(s["tpr_gap"]), fmt(s["gap/reset"]),
                     fmt(s["gap/half"]), fmt(s["gap/end"]), s["widened/end"]])
    return md_table(["agent", "seeds", "|TPR gap|", "P(repay) gap at reset", "at half", "at the end",
                     "seeds whose gap widened (end)"], rows)


def _run_line(data: dict[str, Any]) -> str:
    load = data.get("machine", {}).get("load_average_1min")
    return (f"{data['episodes']} seeds × {data['steps']:,} steps per agent, {data['jobs']} processes at once: "
            f"**{data['wall_seconds']} s** wall, {data['cpu_seconds']} CPU-seconds, on {data['machine']['cpus']} "
            f"CPUs (load average {load} at the start).")


def delayed_impact_page() -> str:
    runs = []
    for stem in ("delayed_impact", "delayed_impact_32seeds", "delayed_impact_reference"):
        files = sorted(p for p in RESULTS.glob(f"{stem}.*") if p.suffix in (".json", ".md"))
        runs.append((command_for(f"{stem}.json"), files))
    parts = ["# The delayed-impact reproduction (D'Amour et al. 2020)\n", made_by(*runs)]
    fills = {"delayed-impact-tables": _delayed_impact_tables, "delayed-impact-reference": _reference_table,
             "delayed-impact-figures": _delayed_impact_figures}
    parts.append(fill_markers(_snippet("delayed-impact"), fills, "docs/snippets/results/delayed-impact.md"))
    return "\n".join(parts)


def _delayed_impact_tables() -> str:
    parts = []
    for stem, title in (("delayed_impact", "8 seeds (the configs)"), ("delayed_impact_32seeds", "32 seeds")):
        data = json.loads((RESULTS / f"{stem}.json").read_text())
        parts += [f"**{title}**: " + _run_line(data) + "\n", (RESULTS / f"{stem}.md").read_text()]
    return "\n".join(parts)


def _delayed_impact_figures() -> str:
    return "\n".join(f"![{p.stem}](delayed-impact/{p.name})\n" for p in sorted(RESULTS.glob("delayed_impact*.png")))


# ---- pages that read several files ------------------------------------------------------------------------------
def _snippet(page: str) -> str:
    path = SNIPPETS / f"{page}.md"
    if not path.exists():
        raise DocsError(f"results/{page}.md needs its reading in docs/snippets/results/{page}.md.")
    return path.read_text()


def _halves(values: list[float]) -> str:
    half = len(values) // 2
    first, second = (sum(v) / len(v) for v in (values[:half], values[half:]))
    return f"{first:.2f} → {second:.2f}"


def episode_grpo_table() -> str:
    """Per arm (and the untrained warm start on the same seeds): steps 0-3 against 4-7, from episode_grpo.json."""
    data = json.loads((RESULTS / "episode_grpo.json").read_text())
    rows = []
    for arm in data["arms"]:
        by_group = arm["approval_rate_by_group"]
        approval = " / ".join(_halves(v).split(" → ")[0] for v in by_group.values()) + " → " + " / ".join(
            _halves(v).split(" → ")[1] for v in by_group.values())
        rows.append([f"`{arm['arm']}`", fmt(arm["fairness_weight"]), _halves(arm["task_return_mean"]),
                     _halves(arm["fairness_gap"]), " ".join(f"{g:.2f}" for g in arm["fairness_gap"]), approval,
                     f"{sum(arm['invalid_action_rate']) / len(arm['invalid_action_rate']):.2f}",
                     f"{arm['rollout_episodes_per_second']:.3f}", fmt(arm["wall_seconds"])])
    seeds = data["arms"][0]["step_seeds"]
    control = [data["untrained_warm_start"][str(seed)] for seed in seeds]
    gaps = [c["fairness_gap"] for c in control]
    rows.append(["untrained warm start (control)", "—", _halves([c["task_return_mean"] for c in control]),
                 _halves(gaps), " ".join(f"{g:.2f}" for g in gaps), "", "", "", ""])
    groups = " / ".join(data["arms"][0]["approval_rate_by_group"])
    return md_table(["arm", "fairness weight", "task return, steps 0–3 → 4–7", "DP gap, steps 0–3 → 4–7",
                     "DP gap per step", f"approval {groups}, steps 0–3 → 4–7", "invalid rate (mean)",
                     "rollout episodes/s", "wall (s)"], rows) + f"\nStep seeds, in order: {seeds}.\n"


STORY_FILLS = {"episode-grpo-table": episode_grpo_table}


def story_page(page: str) -> str:
    title, names = STORIES[page]
    runs, links = [], []
    for name in names:
        path = RESULTS / name
        if not path.exists():
            raise DocsError(f"results/{page}.md reads benchmarks/results/{name}, which does not exist.")
        runs.append((command_for(name), [path / "summary.json"] if path.is_dir() else [path]))
        if path.is_dir():
            links.append(f"[`{name}`]({name}.md)")
    pages = f"The sweeps' own pages, with every table and figure: {', '.join(links)}.\n" if links else ""
    body = fill_markers(_snippet(page), STORY_FILLS, f"docs/snippets/results/{page}.md")
    return "\n".join([f"# {title}\n", made_by(*runs), pages, body])


def index_table() -> str:
    """The results pages and what each is made from, for the results overview."""
    rows = []
    for entry in nav():
        ((title, path),) = entry.items()
        page = path.removeprefix("results/").removesuffix(".md")
        if page in STORIES:
            source = ", ".join(f"`{name}`" for name in STORIES[page][1])
        elif page == "delayed-impact":
            source = "`delayed_impact*.{json,md,png}`"
        else:
            source = f"`{page}/` (`summary.json`, `report.md`, `plots/`)"
        rows.append([f"[{title}]({page}.md)", source])
    return md_table(["page", "made from (under benchmarks/results/)"], rows)


def pages() -> dict[str, str | bytes]:
    out: dict[str, str | bytes] = {"results/delayed-impact.md": delayed_impact_page()}
    out.update({f"results/delayed-impact/{p.name}": p.read_bytes() for p in RESULTS.glob("delayed_impact*.png")})
    for page in STORIES:
        out[f"results/{page}.md"] = story_page(page)
    # figures a story's snippet shows that no sweep folder holds
    out.update({f"results/{p.name}": p.read_bytes() for p in RESULTS.glob("learning_curves.png")})
    for folder in sweep_folders():
        out[f"results/{folder}.md"] = sweep_page(folder)
        out.update(sweep_figures(folder))
    return out
