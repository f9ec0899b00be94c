"""fairgym: Gymnasium environments for sequential allocation and dialogue decisions by LLM agents.

Importing ``fairgym`` registers the environments (``fairgym/Lending-v0``, ...) with Gymnasium; it never
imports torch. It first sets torch's CPU threads and OpenMP's wait policy as the CLI does
(``fairgym.threads.configure_threads``: the user's own settings win), so that a script or notebook that later loads
a model through fairgym is as fast as ``fairgym run``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from fairgym import threads as _threads  # noqa: E402

_threads.configure_on_import()  # before any fairgym module imports torch: OpenMP reads its settings once

from fairgym import envs as envs  # noqa: E402  (registers the envs)
