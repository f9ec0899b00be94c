"""Agents: the protocol, baselines, the LLM agent (imported lazily) and the batched episode runner."""

from __future__ import annotations

from fairgym.agents.registry import AGENTS, make_agent

__all__ = ["AGENTS", "make_agent"]
