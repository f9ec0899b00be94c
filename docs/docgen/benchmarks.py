"""The benchmarks page: each script of ``benchmarks/`` with its docstring, the command and commit of each result
file it wrote under ``benchmarks/results/``, and the numbers in those files (a table where the file's shape is
known, the scalar fields otherwise), followed by the hand-written reading in ``docs/snippets/benchmarks/<script>.md``
where there is one."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docgen.common import DOCS, RESULTS, ROOT, escape_links, fmt, made_by, md_table, rst_to_md
from docgen.results import command_for, sweep_folders

SNIPPETS = DOCS / "snippets" / "benchmarks"
# result files shown on a results page instead (prefix -> page)
ON_RESULTS_PAGES = {"delayed_impact": "results/delayed-impact.md", "episode_grpo": "results/episode-grpo.md",
                    "learning_curve": "results/rank-study.md", "judge_check_": "judge_check.md",
                    "study_lr": "results/rank-study.md", "natural_bias": "results/rank-study.md"}


def _docstring(script: Path) -> str:
    return ast.get_docstring(ast.parse(script.read_text())) or ""


def scripts() -> list[Path]:
    return sorted(p for p in (ROOT / "benchmarks").glob("*.py") if _docstring(p))


def result_files(script: Path) -> list[Path]:
    """The JSON files a script wrote: ``<stem>.json`` and ``<stem>_*.json`` (none of a longer script name's)."""
    longer = {p.stem for p in scripts() if p.stem.startswith(script.stem + "_")}
    found = [p for p in sorted(RESULTS.glob(f"{script.stem}*.json"))
             if (p.stem == script.stem or p.stem.startswith(script.stem + "_"))
             and not any(p.stem == s or p.stem.startswith(s + "_") for s in longer)]
    return found


# ---- renderers for the files whose shape is known ---------------------------------------------------------------
def _env_throughput(d: dict[str, Any]) -> str:
    cols = [("text", "single"), ("text", "batched"), ("numeric", "single"), ("numeric", "batched")]
    by_env: dict[str, dict[tuple[str, str], float]] = {}
    for r in d["results"]:
        by_env.setdefault(r["env"], {})[(r["view"], r["mode"])] = r["steps_per_second"]
    n = d["settings"]["num_envs"]
    header = ["env"] + [f"{v}, {m}" + (f" ×{n}" if m == "batched" else "") for v, m in cols]
    return md_table(header, [[f"`{e}`"] + [f"{vals.get(c, float('nan')):,.0f}" for c in cols]
                             for e, vals in by_env.items()]) + f"\nSettings: `{json.dumps(d['settings'])}`.\n"


def _llm_decisions(d: dict[str, Any]) -> str:
    rows = [[r["envs"], f"{r['naive_decisions_per_s']:.2f}", f"{r['batched_generate_decisions_per_s']:.2f}",
             f"{r['choice_decisions_per_s']:.2f}", f"{r['choice_speedup_vs_naive']:.1f}×",
             f"{r['choice_gflops']:.1f} ({r['choice_fraction_of_matmul']:.0%})",
             f"{r['choice_gflops_strict']:.1f} ({r['choice_fraction_of_matmul_strict']:.0%})"]
            for r in d["results"]]
    out = md_table(["envs", "(a) naive /s", "(b) batched generate /s", "(c) choice scoring /s", "(c) ÷ (a)",
                    "(c) GFLOP/s (of matmul)", "strict"], rows)
    out += f"\nMachine float32 matmul (2048², same run): **{d['matmul_gflops']:.1f} GFLOP/s**.\n"
    for name, busy in (d.get("idle_vs_busy") or {}).items():
        out += (f"\nIdle vs one core busy ({name}, {busy['envs']} envs): {busy['idle_decisions_per_s']:.2f} → "
                f"{busy['busy_decisions_per_s']:.2f} decisions/s (busy/idle **{busy['busy_to_idle']}**).\n")
    return out


def _training(d: dict[str, Any]) -> str:
    rows = [[f"`{arm}`", f"{a['seconds_per_step']:.2f}", f"{a.get('peak_memory_mb', float('nan')):.0f}",
             a.get("shared_prefix_tokens", "—"),
             " ".join(f"{x:.5f}" for x in a.get("losses", []))] for arm, a in d["arms"].items()]
    out = md_table(["arm", "s / step", "peak RSS (MB)", "shared prefix tokens", "losses"], rows)
    bare = d.get("bare_trl_lora_r8")
    if isinstance(bare, dict):
        out += f"\nBare TRL `SFTTrainer`, LoRA r=8: {fmt(bare.get('seconds_per_step'))} s/step.\n"
    ratios = {k: v for k, v in d.items() if isinstance(v, (int, float, bool)) and k not in ("batch", "torch_threads")}
    return out + "\n" + md_table(["measure", "value"], [[f"`{k}`", fmt(v)] for k, v in ratios.items()])


def _judge(d: dict[str, Any]) -> str:
    rows = [[t["replies"], t["prompts"], fmt(t["seconds"]), fmt(t["replies_per_s"])] for t in d["throughput"]]
    return md_table(["replies per call", "prompts", "seconds", "replies / s"], rows) + \
        f"\nModel: {d['model']}. {d['machine'].get('note', '')}\n"


def _serve_latency(d: dict[str, Any]) -> str:
    rows = [[f"`{env}`", mode, f"{m['steps_per_second']:,.0f}", fmt(m["p50_ms"]), fmt(m["p99_ms"])]
            for env, modes in d["envs"].items() for mode, m in modes.items()]
    return md_table(["env", "mode", "steps / s", "p50 (ms)", "p99 (ms)"], rows) + f"\n{d.get('note', '')}\n"


def _residue_calibration(d: dict[str, Any]) -> str:
    rows = []
    for family, found in d.items():
        for measure, m in found["calibration"]["measures"].items():
            rows.append([family, f"`{measure}`", m.get("items"), fmt(m.get("minimum_detectable_lambda"))])
    return md_table(["family", "measure", "items", "minimum detectable λ"], rows)


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "env_throughput": _env_throughput, "llm_decisions": _llm_decisions, "llm_decisions_busy": _llm_decisions,
    "training": _training, "training_prefix_idle": _training, "training_prefix_loaded": _training,
    "judge": _judge, "serve_latency": _serve_latency, "residue_calibration": _residue_calibration,
}


def _scalars(d: Any, prefix: str = "") -> list[list[str]]:
    if isinstance(d, dict):
        return [row for k, v in d.items() for row in _scalars(v, f"{prefix}{k}.")]
    if isinstance(d, (int, float, str, bool)) and len(str(d)) < 80:
        return [[f"`{prefix.rstrip('.')}`", fmt(d)]]
    return []


def render(path: Path) -> str:
    """The numbers of one result file."""
    for prefix, page in ON_RESULTS_PAGES.items():
        if path.stem.startswith(prefix):
            return f"Read on [its own page]({page}).\n"
    data = json.loads(path.read_text())
    if path.stem in RENDERERS:
        return RENDERERS[path.stem](data)
    rows = _scalars(data)[:40]
    return ('??? note "Scalar fields"\n' + "\n".join("    " + line for line in md_table(["field", "value"], rows)
                                                       .splitlines()) + "\n") if rows else "\n"


def script_section(script: Path) -> str:
    doc = escape_links(rst_to_md(_docstring(script)))
    title, _, body = doc.partition("\n")
    parts = [f"## `{script.name}`\n", f"{title}\n", '??? abstract "What it measures (its docstring)"\n'
             + "\n".join("    " + line for line in body.strip().splitlines()) + "\n" if body.strip() else ""]
    files = result_files(script)
    if files:
        parts.append(made_by(*[(command_for(p.name), [p]) for p in files]))
        for p in files:
            parts += [f"### `{p.name}`\n", render(p)]
    snippet = SNIPPETS / f"{script.stem}.md"
    if snippet.exists():
        parts.append(snippet.read_text())
    return "\n".join(parts)


def page() -> str:
    intro = (SNIPPETS / "index.md").read_text()
    sweeps = ", ".join(f"[`{f}`](results/{f}.md)" for f in sweep_folders())
    return "\n".join([intro, f"Finished sweeps kept by `study_results.py`: {sweeps}.\n",
                      *(script_section(s) for s in scripts())])


def pages() -> dict[str, str]:
    return {"benchmarks.md": page()}
