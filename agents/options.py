"""The LLM agent's options and decision modes, defined once and torch-free (the CLI, the sweep and the trainers
read them without loading a model).

How the LLM agent decides on an env follows the env's declaration (``fairgym.envs.env_traits``): choice scoring
where every decision is one of ``info["choices"]``, generation elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

DECIDE_MODES = ("choice", "generate")


def default_decide(env_id: str) -> str:
    """``"choice"`` for an env whose decisions are discrete choices, else ``"generate"`` (e.g. Dialogue)."""
    from fairgym.envs import env_traits

    return "choice" if env_traits(env_id).discrete_choices else "generate"


@dataclass
class LLMOptions:
    """Options of the ``llm`` agent (``fairgym.agents.llm.LLMAgent``); used by no other agent.

    Attributes:
        model: hub id, local folder, or ``None`` for the embedded SmolLM2-135M-Instruct.
        adapter: a PEFT adapter folder to load on top of the model.
        decide: ``"choice"`` (score each valid choice) or ``"generate"`` (sample text the env parses); ``None``
            takes the env's declaration (``default_decide``: choice where decisions are discrete choices).
        temperature: sampling temperature for ``generate`` (0 = greedy).
        top_p: nucleus sampling mass for ``generate``.
        max_new_tokens: generation budget per decision.
    """

    model: str | None = None
    adapter: str | None = None
    decide: str | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 48

    def __post_init__(self) -> None:
        if self.decide is not None and self.decide not in DECIDE_MODES:
            raise ValueError(f"llm.decide={self.decide!r} must be one of {DECIDE_MODES}.")
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.max_new_tokens < 1:
            raise ValueError(f"llm options out of range: temperature={self.temperature} (>= 0), top_p={self.top_p} "
                             f"(in (0, 1]), max_new_tokens={self.max_new_tokens} (>= 1).")
