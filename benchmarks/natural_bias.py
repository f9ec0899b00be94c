"""The embedded model's own group gap, before any implant or fine-tune (the rank study, part 3: a natural bias).

The paper's case is a bias from pre-training. This measures whether the embedded SmolLM2-135M-Instruct has one that
fairgym's instrument can see, with the residue measures the sweep uses (``fairgym.analysis.residue``):

- Lending: the paired margin gap, log P(approve) - log P(deny) for a Black applicant minus the same state with only
  the descriptor swapped to white, on >= 500 distinct decision states (seeded fair-oracle episodes, with the score
  band in words and with digits only); the mean signed gap with a bootstrap interval over states, and the decisions
  that flip with the descriptor (Wilson interval).
- Dialogue, the shipped templates: replies sampled at temperature 1 (and greedy) to the same turns with each group
  as the interlocutor (the same seed: the same template and history), scored by the default scorer group-blind (its
  check, benchmarks/results/judge_check_profanity-check.json, found it rates identity words differently), per group
  with intervals, and each group minus the mean of the others on the same turns.
- Dialogue, the HONEST-format templates (``openings="honest-fairgym"``): the same for eight identities.

The stereotype-endorsement rubric is not measured: the only judge that runs offline, the embedded model judging
itself, is at chance on fairgym's gold set (benchmarks/results/judge_check_judge-default.json).

    python benchmarks/natural_bias.py [--states 500] [--prompts 48] [--samples 4]

Writes ``benchmarks/results/natural_bias.json`` and ``.md``.
"""

from __future__ import annotations

from fairgym.threads import configure_threads

configure_threads()  # before torch loads

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from fairgym.agents import make_agent
from fairgym.agents.base import DecisionKey
from fairgym.agents.runner import run_episodes
from fairgym.analysis.residue import DecisionState, decision_items, decision_states, margin_gap, sampled_toxicity
from fairgym.analysis.stats import bootstrap_ci, format_difference, format_proportion, paired_bootstrap
from fairgym.envs import make_env
from fairgym.envs.groups import mask_groups
from fairgym.envs.records import step_info
from fairgym.envs.toxicity import make_scorer
from fairgym.lm.models import load_model

RESULTS = Path(__file__).resolve().parent / "results"
LENDING, DIALOGUE = "fairgym/Lending-v0", "fairgym/Dialogue-v1"
SEED = 50_000  # episodes no study uses


class BlindScorer:
    """The default scorer reading each reply with the interlocutor groups' descriptors masked (group-blind)."""

    def __init__(self, groups: list[str]) -> None:
        # "the Muslim person" -> also "Muslim": a reply names the identity without the template's phrasing
        words = {g.removeprefix("the ").removesuffix(" person") for g in groups}
        self.descriptors = sorted(set(groups) | words, key=len, reverse=True)
        self.inner, self.name = make_scorer(), "profanity-check (group-blind)"

    def score(self, texts: list[str]) -> list[float]:
        return self.inner.score([mask_groups(t, self.descriptors) for t in texts])


def lending(model: Any, tokenizer: Any, states_wanted: int, score_labels: bool) -> dict[str, Any]:
    """The paired margin gap on ``states_wanted`` distinct decision states of the race preset."""
    kwargs = {"max_steps": 50, "initial_cash": 100, "score_labels": score_labels}
    started = time.perf_counter()
    episodes = run_episodes(LENDING, make_agent("fair-oracle"), episodes=max(2, states_wanted // 20), seed=SEED,
                            env_kwargs=kwargs, progress=False)
    states = decision_states(episodes, states_wanted)
    gap = margin_gap(model, tokenizer, states, ["Black", "white"])
    flips = decision_items(gap)["flip"]
    signed = bootstrap_ci(gap["gap"])
    by_score: dict[int, list[float]] = {}
    for g, i in zip(gap["gap"], gap["state"], strict=True):
        by_score.setdefault(int(states[i].info["context"]["score"]), []).append(g)
    return {"env_kwargs": kwargs, "states": len(states), "pairs": gap["n"],
            "margin_gap_signed": signed, "margin_gap_abs": bootstrap_ci(gap["abs_gap"]),
            "flips": {"k": int(sum(flips)), "n": len(flips), "text": format_proportion(int(sum(flips)), len(flips))},
            "by_score": {s: {"mean": float(np.mean(v)), "n": len(v)} for s, v in sorted(by_score.items())},
            "significant": bool(signed["low"] > 0 or signed["high"] < 0),
            "seconds": round(time.perf_counter() - started, 1)}


def turns(env_kwargs: dict[str, Any], groups: list[str], seeds: int) -> dict[str, list[DecisionState]]:
    """Per group, the Dialogue turns of the same seeded episodes (polite replies as history), that group as the
    interlocutor: turn i of every group is the same template and history."""
    out: dict[str, list[DecisionState]] = {g: [] for g in groups}
    agent = make_agent("polite")
    for group in groups:
        env = make_env(DIALOGUE, **env_kwargs)
        agent.calibrate(env.unwrapped)
        agent.reset(0)
        for seed in range(SEED, SEED + seeds):
            observation, info = env.reset(seed=seed, options={"group": group})
            done = False
            while not done:
                out[group].append(DecisionState(observation, step_info({**info, "observation": observation})))
                key = DecisionKey(episode_seed=seed, turn=int(info["turn"]))  # the same reply for every group
                action = agent.act([observation], [info], decision_keys=[key])[0]
                observation, _, terminated, truncated, info = env.step(action)
                done = terminated or truncated
    return out


def dialogue(model: Any, tokenizer: Any, env_kwargs: dict[str, Any], groups: list[str], seeds: int,
             samples: int) -> dict[str, Any]:
    """Sampled and greedy toxicity per group on the same turns, each group minus the mean of the others."""
    started = time.perf_counter()
    by_group = turns(env_kwargs, groups, seeds)
    scorer = BlindScorer(groups)
    scores = {g: sampled_toxicity(model, tokenizer, [s.messages for s in states], scorer, samples=samples, seed=SEED)
              for g, states in by_group.items()}
    out: dict[str, Any] = {"env_kwargs": env_kwargs, "turns_per_group": len(next(iter(by_group.values()))),
                           "samples": samples, "scorer": scorer.name, "groups": {}}
    for g in groups:
        others = np.mean([scores[o]["sampled"] for o in groups if o != g], axis=0)
        diff = paired_bootstrap(scores[g]["sampled"], others)
        out["groups"][g] = {"sampled": bootstrap_ci(scores[g]["sampled"]), "greedy": bootstrap_ci(scores[g]["greedy"]),
                            "minus_others": diff, "text": format_difference(diff, unit="turns"),
                            "significant": bool(diff["low"] > 0 or diff["high"] < 0),
                            "example_replies": scores[g]["sampled_replies"][0][:2]}
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = ["# The embedded model's own group gap (no implant, no fine-tune)", "",
             f"Command: `{result['command']}`; {result['machine']}.", "",
             "## Lending: paired margin gap (Black - white)", "",
             "| prompt | states | mean signed gap (nats) [95% CI] | mean abs gap | decisions that flip |",
             "|---|---|---|---|---|"]
    for name, part in result["lending"].items():
        s, a = part["margin_gap_signed"], part["margin_gap_abs"]
        lines.append(f"| {name} | {part['states']} | {s['mean']:+.4f} [{s['low']:+.4f}, {s['high']:+.4f}] | "
                     f"{a['mean']:.4f} | {part['flips']['text']} |")
    for name, part in result["dialogue"].items():
        lines += ["", f"## Dialogue, {name}: sampled toxicity per group ({part['samples']} replies per turn at "
                  f"temperature 1, {part['turns_per_group']} turns per group, {part['scorer']})", "",
                  "| group | sampled [95% CI] | greedy | minus the other groups on the same turns |",
                  "|---|---|---|---|"]
        for g, e in part["groups"].items():
            lines.append(f"| {g} | {e['sampled']['mean']:.4f} [{e['sampled']['low']:.4f}, {e['sampled']['high']:.4f}]"
                         f" | {e['greedy']['mean']:.4f} | {e['text']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=500, help="distinct Lending decision states per prompt form")
    parser.add_argument("--seeds", type=int, default=4, help="Dialogue episodes per group (shipped templates)")
    parser.add_argument("--samples", type=int, default=4, help="sampled replies per turn")
    args = parser.parse_args()
    started = time.perf_counter()
    model, tokenizer = load_model(None, device="cpu")
    result: dict[str, Any] = {
        "command": f"python benchmarks/natural_bias.py --states {args.states} --seeds {args.seeds} "
                   f"--samples {args.samples}",
        "machine": f"{platform.machine()}, {platform.python_version()}, CPU",
        "lending": {"score band in words": lending(model, tokenizer, args.states, True),
                    "digits only": lending(model, tokenizer, args.states, False)},
        "dialogue": {"shipped templates": dialogue(model, tokenizer, {"max_steps": 6}, ["Black", "white"],
                                                   args.seeds, args.samples),
                     "HONEST-format": dialogue(model, tokenizer, {"max_steps": 1, "openings": "honest-fairgym"},
                                               list(make_env(DIALOGUE, openings="honest-fairgym").unwrapped.groups),
                                               args.seeds * 3, args.samples)}}
    result["seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "natural_bias.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    (RESULTS / "natural_bias.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
