"""The ``toxicity_scorer="judge:<model>"`` spec, parsed without loading a model (judge: ``fairgym.lm.judge``)."""

from __future__ import annotations

from typing import Any

JUDGE_PREFIX = "judge:"
EMBEDDED_ALIASES = ("default", "embedded")  # judge:default / judge:embedded = the embedded SmolLM2


def is_judge_spec(spec: Any) -> bool:
    """Whether ``spec`` names a judge (``"judge:<model>"``)."""
    return isinstance(spec, str) and spec.startswith(JUDGE_PREFIX)


def judge_model(spec: str) -> str | None:
    """The model of a ``judge:`` spec: ``None`` for the embedded default, else the path or hub id.

    Raises:
        ValueError: nothing after ``judge:``.
    """
    model = spec[len(JUDGE_PREFIX):].strip()
    if not model:
        raise ValueError(f"toxicity_scorer={spec!r} names no model; write judge:<local folder or hub id>, or "
                         f"judge:{EMBEDDED_ALIASES[0]} for the embedded SmolLM2.")
    return None if model in EMBEDDED_ALIASES else model
