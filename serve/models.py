"""The wire types of a served fairgym env: OpenEnv's ``Action``/``Observation``/``State``, with fairgym's text.

An action is the agent's raw text (the env parses it, so a text the env cannot parse is an invalid action under
its policy, recorded in ``info``, never a protocol error). An observation carries the env's observation text,
the reward, the done flags and the full ``info`` dict fairgym's records are made of (``fairgym.envs.keys``); the
one returned by ``reset`` also names the env (``EnvDescription``) and its state at reset (``start``).
"""

from __future__ import annotations

from typing import Any

from openenv.core.env_server.types import Action, Observation, State
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from fairgym.envs.core import MAX_TEXT


class TextAction(Action):
    """One decision: the text an agent wrote (``{"text": "approve"}``)."""

    text: str = Field(..., max_length=MAX_TEXT,
                      description="the action text as the agent wrote it; the env parses it (e.g. 'approve')")

    @model_validator(mode="before")
    @classmethod
    def _one_text_field(cls, data: Any) -> Any:
        if isinstance(data, dict) and "text" not in data:
            # a custom error keeps the error JSON-safe (OpenEnv sends pydantic's errors() back to the client)
            raise PydanticCustomError("fairgym_action", "a fairgym action is an object with one field, text (the "
                                      "action text, e.g. 'approve'); got fields {fields}", {"fields": sorted(data)})
        return data


class EnvDescription(BaseModel):
    """What a served env declares, so a client can act on it as on a local env.

    Attributes:
        env_id: the registered id. family / discrete_choices: the env class's declarations
            (``fairgym.envs.env_traits``). groups: the env's groups in order.
        parameters: the env's public settings as built (every JSON-safe public attribute its constructor set,
            e.g. Lending's ``repay_probabilities``): what agents calibrate from; per-episode state is not in it.
        default_action: the action text the ``"default"`` invalid-action policy applies (``None`` when none).
    """

    model_config = ConfigDict(extra="forbid")

    env_id: str
    family: str
    discrete_choices: bool
    groups: list[str]
    parameters: dict[str, Any] = Field(default_factory=dict)
    default_action: str | None = None


class TextObservation(Observation):
    """One step's result (``done``/``reward``/``metadata`` come from OpenEnv's ``Observation``).

    Attributes:
        text: the observation text. info: the env's ``info`` (the keys of ``fairgym.envs.keys``).
        terminated / truncated: Gymnasium's flags (``done`` is their union).
        env: at reset, the env's description; ``None`` after a step. start: at reset, the env's state at reset
            (``start_state()``, recorded as an episode's ``start``); ``None`` after a step.
    """

    text: str = ""
    info: dict[str, Any] = Field(default_factory=dict)
    terminated: bool = False
    truncated: bool = False
    env: EnvDescription | None = None
    start: dict[str, Any] | None = None


class EpisodeState(State):
    """The session's episode (``episode_id``/``step_count`` from OpenEnv's ``State``)."""

    env_id: str | None = None
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None
    done: bool = False
