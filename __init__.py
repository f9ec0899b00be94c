"""fairgym: Gymnasium environments for sequential allocation and dialogue decisions by LLM agents.

Importing ``fairgym`` registers the environments (``fairgym/Lending-v0``, ...) with Gymnasium; it never
imports torch.
"""

from __future__ import annotations

__version__ = "0.1.0"

from fairgym import envs as envs  # noqa: E402  (registers the envs)
