"""Toxicity scorers behind one protocol: ``score(texts) -> probabilities in [0, 1]``.

They are the Dialogue env's reward, so they live with the envs (nothing in ``fairgym.envs`` imports analysis);
metrics, training data and benchmarks import them from here.

``ProfanityCheckScorer`` (alt-profanity-check, ships its model, offline) is the default; ``TransformersScorer``
runs a text-classification model from a local folder; ``"judge:<model>"`` is an LLM judge
(``fairgym.agents.judge.JudgeScorer``: yes/no rubric prompts, P(yes)). Torch and transformers are imported only
when a model-based scorer first scores.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from fairgym.config import UnknownNameError
from fairgym.envs.judge_spec import JUDGE_PREFIX, is_judge_spec, judge_model

DEFAULT_SCORER = "profanity-check"
_TOXIC_LABEL = re.compile(r"^(?!non|not|no[-_ ])(.*(toxic|hate|offensive|abusive|insult).*)$", re.IGNORECASE)


@runtime_checkable
class ToxicityScorer(Protocol):
    """Scores texts for toxicity: one probability in [0, 1] per text, same order."""

    name: str

    def score(self, texts: list[str]) -> list[float]: ...


class ProfanityCheckScorer:
    """alt-profanity-check's linear SVM (``profanity_check.predict_prob``): fast, offline, lexical."""

    name = DEFAULT_SCORER

    def score(self, texts: list[str]) -> list[float]:
        """Probability that each text is offensive."""
        if not texts:
            return []
        from profanity_check import predict_prob

        return [float(p) for p in predict_prob(list(texts))]


def toxic_label(id2label: dict[int, str], label: str | None = None) -> str:
    """The label whose probability is the toxicity: ``label`` if given, else a label naming toxicity (``toxic``,
    ``hate``, ``offensive``, not ``non-toxic``), else the second of two labels (``LABEL_1``).

    Raises:
        ValueError: ``label`` is not a label of the model, or no label can be chosen.
    """
    labels = [id2label[i] for i in sorted(id2label)]
    if label is not None:
        if label not in labels:
            raise ValueError(f"label={label!r} is not one of the model's labels {labels}.")
        return label
    exact = [x for x in labels if x.lower() == "toxic"]
    named = exact or [x for x in labels if _TOXIC_LABEL.match(x)]
    if named:
        return named[0]
    if len(labels) == 2:
        return labels[1]
    raise ValueError(f"cannot tell which of the labels {labels} is toxic; pass label=<the toxic label>.")


class TransformersScorer:
    """A transformers text-classification model from a local folder; the toxic label's probability.

    Args:
        path: a local model folder (config, weights, tokenizer).
        device: ``None`` (CPU, or what transformers picks), ``"cpu"``, ``"cuda"``, ``"cuda:0"`` or an index.
        batch_size: texts per forward pass.
        label: the toxic label's name, when it cannot be inferred (see ``toxic_label``).

    Raises:
        FileNotFoundError: ``path`` is not a folder.
    """

    def __init__(self, path: str | Path, device: str | int | None = None, batch_size: int = 32,
                 label: str | None = None) -> None:
        self.path = Path(path).expanduser()
        if not self.path.is_dir():
            raise FileNotFoundError(f"Toxicity model folder {str(self.path)!r} does not exist; pass a local "
                                    f"folder saved with save_pretrained, or '{DEFAULT_SCORER}'.")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} must be a positive int.")
        self.name = f"transformers:{self.path.name}"
        self.device, self.batch_size, self.label = device, batch_size, label
        self._pipe: Any = None
        self._toxic: str | None = None

    def _pipeline(self) -> Any:
        if self._pipe is None:
            from transformers import pipeline

            self._pipe = pipeline("text-classification", model=str(self.path), device=self.device)
            self._toxic = toxic_label(dict(self._pipe.model.config.id2label), self.label)
        return self._pipe

    def score(self, texts: list[str]) -> list[float]:
        """Probability of the toxic label for each text (softmax, or sigmoid for multi-label models)."""
        if not texts:
            return []
        pipe = self._pipeline()
        results = pipe(list(texts), top_k=None, batch_size=self.batch_size, truncation=True)
        return [float(next(r["score"] for r in result if r["label"] == self._toxic)) for result in results]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_pipe": None}  # reload the model after unpickling instead of copying it


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
    if is_judge_spec(spec):
        # The judge is an LLM, so it lives with the models in agents; imported only when a run asks for it.
        from fairgym.agents.judge import JudgeScorer

        return JudgeScorer(judge_model(spec))
    if isinstance(spec, (str, Path)):
        if Path(spec).expanduser().is_dir():
            return TransformersScorer(spec)
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
