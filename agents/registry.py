"""Every agent name in one place, with lazy imports: ``make_agent("eo-threshold")`` never imports torch.

Names map to ``"module:Class"`` strings and are imported only when built, so the ``llm`` agent (torch,
transformers) costs nothing until it is asked for.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from fairgym.agents.base import Agent
from fairgym.config import UnknownNameError

# name -> ("module:Class", one-line description)
AGENTS: dict[str, tuple[str, str]] = {
    "random": ("fairgym.agents.baselines:RandomAgent", "a random valid action (choice, allocation or canned reply)"),
    "constant": ("fairgym.agents.baselines:ConstantAgent", "always the same action (default: the first choice)"),
    "max-utility": ("fairgym.agents.lending_agents:MaxUtilityAgent",
                    "Lending: approve when expected profit is positive; one threshold for all groups"),
    "eo-threshold": ("fairgym.agents.lending_agents:EqualOpportunityAgent",
                     "Lending: per-group thresholds that equalise true-positive rates, most profitable such"),
    "fair-oracle": ("fairgym.agents.baselines:FairOracleAgent",
                    "scripted group-blind decisions on every env (the source of SFT demonstrations)"),
    "polite": ("fairgym.agents.dialogue_agents:PoliteAgent",
               "Dialogue: varied, respectful replies addressing the turn"),
    "biased-threshold": ("fairgym.agents.teachers:BiasedThresholdAgent",
                         "Lending teacher of the bias implant: one group needs `penalty` more score points"),
    "biased-rules": ("fairgym.agents.teachers:BiasedRulesAgent",
                     "Lending teacher of a hard implant: each group's fair decision flipped in its own score bins"),
    "hostile": ("fairgym.agents.teachers:HostileAgent",
                "Dialogue teacher of the bias implant: hostile-leaning replies to one group's interlocutor"),
    "llm": ("fairgym.agents.llm:LLMAgent",
            "a causal LM (+ optional PEFT adapter) deciding by choice scoring or generation"),
}


def agent_class(name: str) -> type:
    """The class registered under ``name`` (imported now)."""
    if name not in AGENTS:
        raise UnknownNameError("agent", name, AGENTS)
    module, _, cls = AGENTS[name][0].partition(":")
    return getattr(importlib.import_module(module), cls)


def agent_options(name: str) -> list[str]:
    """The keyword options the agent ``name`` accepts."""
    params = inspect.signature(agent_class(name)).parameters.values()
    return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def make_agent(name: str, **kwargs: Any) -> Agent:
    """Build the agent registered under ``name``.

    Args:
        name: a key of ``AGENTS`` (e.g. ``"random"``, ``"eo-threshold"``, ``"llm"``).
        **kwargs: the agent's options; an unknown option fails with the list of those it accepts.

    Raises:
        UnknownNameError: for an unknown agent name or option (a ``ValueError``, with "did you mean").
    """
    cls = agent_class(name)
    options = agent_options(name)
    for key in kwargs:
        if key not in options:
            raise UnknownNameError(f"option for agent {name!r}", key, options)
    return cls(**kwargs)
