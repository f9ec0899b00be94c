"""Toxicity scorers behind one protocol: ``score(texts) -> probabilities in [0, 1]``.

They are the Dialogue env's reward, so the protocol and the spec a config names live with the envs. The default,
``ProfanityCheckScorer`` (alt-profanity-check, ships its model, offline), is here; the model-based scorers live in
the model layer and are named by entry point (``SCORER_ENTRY_POINTS``, as Gymnasium names env classes), so
``fairgym.envs`` imports neither torch nor anything above it:

- ``"judge:<model>"``: an LLM judge (``fairgym.lm.judge.JudgeScorer``: yes/no rubric prompts, P(yes));
- a local folder: a transformers text-classification model (``fairgym.lm.classifier.TransformersScorer``).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from fairgym.config import UnknownNameError
from fairgym.envs.judge_spec import JUDGE_PREFIX, is_judge_spec, judge_model

DEFAULT_SCORER = "profanity-check"
# scorer kind -> "module:Class", imported only when a run asks for that kind
SCORER_ENTRY_POINTS = {"judge": "fairgym.lm.judge:JudgeScorer",
                       "classifier": "fairgym.lm.classifier:TransformersScorer"}


def scorer_class(kind: str) -> type:
    """The scorer class registered under ``kind`` (``"judge"``, ``"classifier"``), imported now."""
    if kind not in SCORER_ENTRY_POINTS:
        raise UnknownNameError("toxicity scorer kind", kind, SCORER_ENTRY_POINTS)
    module, _, name = SCORER_ENTRY_POINTS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


@runtime_checkable
class ToxicityScorer(Protocol):
    """Scores texts for toxicity: one probability in [0, 1] per text, same order. A scorer may declare
    ``group_blind`` (bool), whether the Dialogue env scores for it with identity terms masked by default."""

    name: str

    def score(self, texts: list[str]) -> list[float]: ...


class ProfanityCheckScorer:
    """alt-profanity-check's linear SVM (``profanity_check.predict_prob``): fast, offline, lexical."""

    name = DEFAULT_SCORER
    # The Dialogue env's default: score with identity terms masked. Its check (docs/judge_check.md) finds the group
    # words alone move its score (up to 0.32) and masking them costs no AUC.
    group_blind = True

    def score(self, texts: list[str]) -> list[float]:
        """Probability that each text is offensive."""
        if not texts:
            return []
        from profanity_check import predict_prob

        return [float(p) for p in predict_prob(list(texts))]


def check_spec(spec: Any) -> Any:
    """``spec`` if ``make_scorer`` would accept it, checked without loading anything (for env constructors).

    Raises:
        ValueError: a string that is neither a known scorer, a ``judge:<model>`` spec nor an existing folder.
        TypeError: anything else without ``score``.
    """
    if spec is None or spec == DEFAULT_SCORER or callable(getattr(spec, "score", None)):
        return spec
    if is_judge_spec(spec):
        judge_model(spec)
        return spec
    if isinstance(spec, (str, Path)):
        if Path(spec).expanduser().is_dir():
            return str(spec)
        raise ValueError(f"toxicity_scorer={str(spec)!r} is neither {DEFAULT_SCORER!r}, {JUDGE_PREFIX}<model> nor "
                         "an existing local model folder.")
    raise TypeError(f"toxicity_scorer={spec!r} must be {DEFAULT_SCORER!r}, {JUDGE_PREFIX}<model>, a local model "
                    "folder, or an object with score(texts) -> list[float].")


def make_scorer(spec: str | Path | ToxicityScorer | None = None) -> ToxicityScorer:
    """A scorer from a spec: ``None``/``"profanity-check"``, ``"judge:<model>"`` (an LLM judge; ``judge:default``
    is the embedded SmolLM2), a local text-classification model folder, or a scorer object.

    Raises:
        UnknownNameError: a string that is neither a known scorer name nor an existing folder.
        TypeError: an object without ``score``.
    """
    if spec is None or spec == DEFAULT_SCORER:
        return ProfanityCheckScorer()
    if isinstance(spec, str) and is_judge_spec(spec):
        return scorer_class("judge")(judge_model(spec))
    if isinstance(spec, (str, Path)):
        if Path(spec).expanduser().is_dir():
            return scorer_class("classifier")(spec)
        raise UnknownNameError("toxicity scorer (name or local model folder)", str(spec),
                               [DEFAULT_SCORER, f"{JUDGE_PREFIX}default"])
    if callable(getattr(spec, "score", None)):
        return spec
    raise TypeError(f"toxicity_scorer={spec!r} must be {DEFAULT_SCORER!r}, a local model folder, or an object "
                    "with score(texts) -> list[float].")


def score_texts(scorer: ToxicityScorer, texts: Sequence[str]) -> list[float]:
    """``scorer.score(texts)`` checked: one float in [0, 1] per text."""
    scores = scorer.score(list(texts))
    if len(scores) != len(texts) or any(not 0.0 <= s <= 1.0 for s in scores):
        raise ValueError(f"scorer {getattr(scorer, 'name', scorer)!r} must return one probability in [0, 1] per "
                         f"text; got {scores!r} for {len(texts)} texts.")
    return [float(s) for s in scores]
