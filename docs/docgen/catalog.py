"""Catalogues read from their one home: the agent registry (``fairgym.agents.registry.AGENTS``), which envs each
agent applies to (its ``calibrate`` decides), and the shipped YAML configs (each file's leading comment)."""

from __future__ import annotations

from docgen.common import ROOT, md_table, rst_to_md


def _applies(name: str, env_id: str) -> bool:
    from fairgym.agents import make_agent
    from fairgym.envs import make_env

    agent = make_agent(name)
    env = make_env(env_id).unwrapped  # as the runner calibrates: the env itself, reset
    env.reset(seed=0)
    try:
        agent.calibrate(env)
    except ValueError:
        return False
    return True


def agent_table() -> str:
    """Every registered agent: what it does, where it applies (by calibrating it on each env), its options."""
    from docgen.envs import env_ids
    from fairgym.agents.registry import AGENTS, agent_options

    rows = []
    for name, (ref, what) in AGENTS.items():
        module, _, cls = ref.partition(":")
        if name == "llm":
            where = "every env"
        else:
            found = [env_id.split("/")[-1] for env_id in env_ids() if _applies(name, env_id)]
            where = ", ".join(found) or "none registered"
        options = ", ".join(f"`{o}`" for o in agent_options(name)) or "—"
        rows.append([f"`{name}`", rst_to_md(what), where, options, f"[`{cls}`][{module}.{cls}]"])
    return md_table(["name", "decides", "applies to", "options", "class"], rows)


def _leading_comment(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(lines)


def config_table(folder: str) -> str:
    """The YAML files of ``configs/<folder>/`` with their leading comment (what each is for)."""
    rows = [[f"`{p.relative_to(ROOT)}`", rst_to_md(_leading_comment(p.read_text())) or "—"]
            for p in sorted((ROOT / "configs" / folder).glob("*.yaml"))]
    return md_table(["config", "what it is for (its leading comment)"], rows)
