"""One page per registered env, as Gymnasium's env pages are made: from the env class's docstring (the one home of
its description, groups, grammar, observation, rewards, episode end, info and arguments), its signature (the
defaults), a seeded example episode step, and its family's profile (the metrics, figures, teachers and agents)."""

from __future__ import annotations

import inspect
import json
import string
from pathlib import Path
from typing import Any

from docgen.common import ROOT, DocsError, entries, fmt, md_table, rst_to_md, sections

# The sections an env docstring holds (STYLE.md, Tooling), in page order; "Arguments" is rendered as a table.
ENV_SECTIONS = ("Description", "Groups", "Action grammar", "Observation", "Rewards", "Episode end", "Information")
EXAMPLE_SEED = 0


def env_ids() -> list[str]:
    from fairgym.envs import ENV_IDS

    return list(ENV_IDS)


def page_path(env_id: str) -> str:
    return f"envs/{env_id.split('/')[-1].lower()}.md"


def nav() -> list[dict[str, str]]:
    return [{env_id.split("/")[-1]: page_path(env_id)} for env_id in env_ids()]


def _default(value: Any) -> str:
    if value is inspect.Parameter.empty:
        return "required"
    if isinstance(value, Path):  # a shipped file: show it from the package root, not this machine's path
        try:
            return f"`{value.resolve().relative_to(ROOT.resolve())}`"
        except ValueError:
            return f"`{value.name}`"
    return f"`{value!r}`"


def arguments_table(env_id: str) -> str:
    """Every keyword argument with its default (the signature) and meaning (the docstrings); an argument without a
    docstring entry is an error, so the docstrings stay complete."""
    from fairgym.envs import env_class
    from fairgym.envs.core import TextEnv

    cls = env_class(env_id)
    own = entries(sections(cls.__doc__)[1].get("Arguments", ""))
    base = entries(sections(TextEnv.__doc__)[1].get("Args", ""))
    rows, seen = [], set()
    for owner, documented in ((cls, own), (TextEnv, base)):
        for param in inspect.signature(owner).parameters.values():
            if param.kind is not param.KEYWORD_ONLY or param.name in seen:
                continue
            seen.add(param.name)
            meaning = documented.get(param.name) or (base.get(param.name) if owner is cls else None)
            if not meaning:
                raise DocsError(f"{cls.__name__}.__init__ argument {param.name!r} is not documented in the class "
                                "docstring's Arguments section (or TextEnv's Args); document it there.")
            rows.append([f"`{param.name}`", _default(param.default), rst_to_md(meaning)])
    return md_table(["argument", "default", "meaning"], rows)


def _space(space: Any) -> str:
    charset = getattr(space, "character_set", None)
    if charset is None:
        return f"`{space}`"
    what = "printable ASCII (`string.printable`)" if set(charset) == set(string.printable) \
        else f"{len(charset)} characters"
    return f"`Text(min_length={space.min_length}, max_length={space.max_length})`, charset: {what}"


def example_step(env_id: str) -> tuple[str, str, str]:
    """A seeded reset and one step by the family's fair teacher: the observation, the action text, the info."""
    from fairgym.agents import make_agent
    from fairgym.envs import env_profile, make_env

    env = make_env(env_id).unwrapped
    obs, info = env.reset(seed=EXAMPLE_SEED)
    agent = make_agent(env_profile(env_id).fair_teacher)
    agent.calibrate(env)
    (action,) = agent.act([obs], [info])
    _, _, _, _, info = env.step(action)
    return obs, action, json.dumps(info, indent=2, default=str)


def grammar_extras(env_id: str) -> str:
    """The parser's own docstring and the action the ``"default"`` invalid-action policy applies."""
    import importlib

    from fairgym.envs import env_class, make_env

    cls = env_class(env_id)
    module = importlib.import_module(cls.__module__)
    out = []
    parser = getattr(module, "parse_action", None)
    if parser is not None and parser.__doc__:
        out.append(f"The parser, `{cls.__module__}.parse_action`: {rst_to_md(inspect.cleandoc(parser.__doc__))}\n")
    env = make_env(env_id).unwrapped
    env.reset(seed=EXAMPLE_SEED)
    out.append(f'Under `invalid_action="default"` an invalid text is replaced by '
               f"`{env.format_action(env._default_action())}`.\n")
    return "\n".join(out)


def numeric_section(env_id: str) -> str:
    """``make_numeric(env_id)``: its spaces and its adapter's encoding."""
    from fairgym.envs import make_numeric

    view = make_numeric(env_id)
    doc = rst_to_md(inspect.cleandoc(type(view.adapter).__doc__ or ""))
    canned = ""
    if type(view.adapter).__name__ == "_DialogueAdapter":
        from fairgym.envs.dialogue import CANNED_REPLIES

        canned = "\n\nCanned replies, by index:\n\n" + "\n".join(f"{i}. {r}" for i, r in enumerate(CANNED_REPLIES))
    return (f"`fairgym.envs.make_numeric(\"{env_id}\")` gives Box/Discrete spaces over the same dynamics, for "
            f"classic RL: observation `{view.observation_space}`, action `{view.action_space}`. {doc}{canned}\n")


def start_section(env_id: str) -> str:
    from fairgym.envs import make_env

    env = make_env(env_id).unwrapped
    if not hasattr(env, "start_state"):
        return ""
    env.reset(seed=EXAMPLE_SEED)
    state = json.dumps(env.start_state(), indent=2, default=str)
    return (f"`env.start_state()` at reset (seed {EXAMPLE_SEED}, default arguments), recorded by the runner as the "
            f"episode's `start`:\n\n```json\n{state}\n```\n")


def profile_section(env_id: str) -> str:
    """What the family's ``FamilyProfile`` declares: headline metrics, figures, rewards, teachers, agents."""
    from fairgym.envs import env_profile
    from fairgym.envs.profiles import resolve

    p = env_profile(env_id)
    headline = [[f"`{key}`", title, "yes" if key in p.bias_metrics else "", "yes" if key in p.optional_metrics
                 else ""] for key, title in p.headline]
    notes = resolve(p.figure_notes) or {}
    parts = [f"The `{p.family}` family's profile (`fairgym.envs.env_profile({env_id!r})`, "
             "[`FamilyProfile`][fairgym.envs.profiles.FamilyProfile]) declares what the rest of fairgym reports "
             "for this env; the definitions of the keys are in the [metrics reference](../metrics.md).\n"]
    if headline:
        parts.append("**Headline metrics** (the sweep report's columns; *bias* ones are plotted against rank):\n")
        parts.append(md_table(["key", "column", "bias metric", "only when present"], headline))
    if p.legend:
        parts.append(f"\n{p.legend}\n")
    if notes:
        parts.append("\n**Run-report figures** (`fairgym report`), with the note printed under each:\n")
        parts.append(md_table(["figure", "how to read it"], [[f"`{k}.png`", v] for k, v in notes.items()]))
    series = [f"`{s.name}_<Env-vN>.png` ({s.title}: `{s.metric}`)" for s in p.sweep_series]
    compounding = resolve(p.compounding) or {}
    facts = [
        ["fairness metric the episode rewards penalise by default", f"`{p.fairness_metric}`" if p.fairness_metric
         else "none"],
        ["episodes scored for toxicity (reward term `toxicity`)", "yes" if p.toxicity_reward else "no"],
        ["training data SFT and GRPO build by default", f"`{p.training_data}`"],
        ["fair teacher (SFT demonstrations, the report's reference row)", f"`{p.fair_teacher}`"],
        ["biased teacher (the implant, DPO's rejected side)", f"`{p.biased_teacher}`" if p.biased_teacher
         else "none"],
        ["approval metric (collapse verdict)", f"`{p.approval_metric}`" if p.approval_metric else "none"],
        ["agreement metric", f"`{p.agreement_metric}`" if p.agreement_metric else "none"],
        ["compounding series (sweep report)", ", ".join(compounding) or "none"],
        ["per-arm sweep figures", "; ".join(series) or "none"],
        ["W&B step-table columns", ", ".join(f"`{c}`" for c in p.wandb_columns) or "none"],
        ["W&B columns when present", ", ".join(f"`{c}`" for c in p.optional_wandb_columns) or "none"],
        ["agents with a policy for this family", ", ".join(f"`{a}`" for a in p.policies) or "none"],
    ]
    parts.append("\n" + md_table(["profile field", "value"], facts))
    return "\n".join(parts)


def env_page(env_id: str) -> str:
    """The page of ``env_id``."""
    from fairgym.envs import env_class, env_traits

    cls = env_class(env_id)
    summary, found = sections(cls.__doc__)
    missing = [s for s in (*ENV_SECTIONS, "Arguments") if s not in found]
    if missing:
        raise DocsError(f"{cls.__name__}'s docstring lacks the section(s) {missing} (STYLE.md: env classes are "
                        "documented with Description / Groups / Action grammar / Observation / Rewards / Episode end "
                        "/ Information / Arguments).")
    from fairgym.envs import make_env

    env = make_env(env_id)
    traits = env_traits(env_id)
    obs, action, info = example_step(env_id)
    spec = [["id", f"`{env_id}`"], ["class", f"[`{cls.__module__}.{cls.__name__}`][{cls.__module__}.{cls.__name__}]"],
            ["family", f"`{traits.family}`"], ["decisions are choices", "yes (choice scoring applies)"
                                                if traits.discrete_choices else "no (the LLM agent generates)"],
            ["observation space", _space(env.observation_space)], ["action space", _space(env.action_space)],
            ["groups (default)", ", ".join(f"`{g}`" for g in env.unwrapped.groups) or "—"],
            ["make", f'`fairgym.envs.make_env("{env_id}", **arguments)` or `gym.make("{env_id}")`']]
    out = [f"# {env_id.split('/')[-1]}\n", f"{rst_to_md(summary)}\n", md_table(["", ""], spec)]
    for name in ENV_SECTIONS:
        out.append(f"## {name}\n\n{rst_to_md(found[name])}\n")
        if name == "Action grammar":
            out.append(grammar_extras(env_id))
        if name == "Observation":
            out.append(f"At reset with `seed={EXAMPLE_SEED}` and the default arguments:\n\n```text\n{obs}\n```\n")
        if name == "Information":
            out.append(start_section(env_id))
            out.append(f"The step after it, taking `{action}` (the `{env_traits(env_id).profile.fair_teacher}` "
                       f"agent's action), returns this `info`:\n\n```json\n{info}\n```\n")
    out.append("## Arguments\n\nEvery argument is a keyword of `make_env` (or `--env-opt name=value` on the "
               "command line); an unknown one is an error that lists these.\n\n" + arguments_table(env_id))
    out.append("\nInvalid text never raises: see [the invalid-action policy](index.md#invalid-actions).\n")
    out.append("## Numeric view\n\n" + numeric_section(env_id))
    out.append("## What its family reports\n\n" + profile_section(env_id))
    anchor = env_id.split("/")[-1].lower()
    out.append(f"\nThe keys `compute_metrics` returns for this env, with their scope and trajectories, are listed in "
               f"the [metrics reference](../metrics.md#{anchor}).\n")
    return "\n".join(out)


def pages() -> dict[str, str]:
    return {page_path(env_id): env_page(env_id) for env_id in env_ids()}


def env_table() -> str:
    """The envs at a glance (the first line of each docstring), for the overview page."""
    from fairgym.envs import env_class, env_traits

    rows = []
    for env_id in env_ids():
        cls = env_class(env_id)
        summary = sections(cls.__doc__)[0].splitlines()[0]
        default = inspect.signature(cls).parameters["max_steps"].default
        rows.append([f"[`{env_id}`]({Path(page_path(env_id)).name})", env_traits(env_id).family, rst_to_md(summary),
                     fmt(default)])
    return md_table(["id", "family", "what each episode asks", "default length"], rows)


def info_keys_table() -> str:
    """The info keys every env returns, from ``fairgym.envs.keys`` (each constant's comment is its meaning)."""
    import re

    source = (ROOT / "envs" / "keys.py").read_text()
    rows, kind = [], ""
    for line in source.splitlines():
        if line.startswith("# Decision"):
            kind = "decision pending"
        elif line.startswith("# Result"):
            kind = "step just taken"
        match = re.match(r'^([A-Z_]+) = "(\w+)"\s+# (.*)$', line)
        if match:
            rows.append([f"`{match.group(2)}`", f"`keys.{match.group(1)}`", kind, rst_to_md(match.group(3))])
    return md_table(["key", "constant", "describes", "meaning"], rows)


def descriptor_sets_table() -> str:
    from fairgym.envs.groups import DEFAULT_DESCRIPTORS, DESCRIPTOR_SETS

    return md_table(["preset", "descriptors"], [[f"`{name}`" + (" (default)" if name == DEFAULT_DESCRIPTORS else ""),
                                                 ", ".join(values)] for name, values in DESCRIPTOR_SETS.items()])
