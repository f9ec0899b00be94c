"""A transformers text-classification model from a local folder as a toxicity scorer (``toxicity_scorer=<folder>``).

The Dialogue env names it by its folder; ``fairgym.envs.toxicity.make_scorer`` builds it through its entry point,
so ``fairgym.envs`` never imports this module (or transformers) until a run asks for it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fairgym.envs.toxicity import DEFAULT_SCORER

_TOXIC_LABEL = re.compile(r"^(?!non|not|no[-_ ])(.*(toxic|hate|offensive|abusive|insult).*)$", re.IGNORECASE)


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

    # The Dialogue env's default: mask identity terms, as for profanity-check (classifiers trained on toxic comments
    # are known to react to identity words); check yours with `fairgym judge check <folder>`.
    group_blind = True

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
