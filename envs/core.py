"""The base class every fairgym env is built on: text in, text out, structure in ``info``.

``step()`` is written once here. Each env fills small hooks: ``_reset_state``, ``parse_action``,
``_apply``, ``_default_action``, ``_observation``, ``_decision`` and optionally ``_messages``.
"""

from __future__ import annotations

import dataclasses
import re
import string
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
from gymnasium import spaces

from fairgym.envs import keys
from fairgym.envs.profiles import FamilyProfile

PRINTABLE = frozenset(string.printable)  # the charset of every Text space (the default is alphanumeric only)
_NON_PRINTABLE = re.compile("[^" + re.escape(string.printable) + "]")
MAX_TEXT = 8192
INVALID_POLICIES = ("penalize", "default", "end")


@dataclass(frozen=True)
class ParseError:
    """Why an action text did not parse; shown to the agent in the next observation."""

    message: str


@dataclass(frozen=True)
class Decision:
    """The pending decision, as the ``info`` decision keys describe it."""

    group: str | None
    choices: list[str] | None = None
    context: dict[str, Any] = dataclasses.field(default_factory=dict)


_FIELDS: dict[type, tuple[str, ...]] = {}
_SCALARS = (str, int, float, bool, type(None))


def action_to_dict(action: Any) -> dict[str, Any] | None:
    """A parsed action as a JSON-safe dict (a fresh copy: records keep it)."""
    if action is None:
        return None
    if not dataclasses.is_dataclass(action):
        return dict(action)
    names = _FIELDS.get(type(action))
    if names is None:
        names = _FIELDS[type(action)] = tuple(f.name for f in dataclasses.fields(action))
    values = {name: getattr(action, name) for name in names}
    # flat actions (Lending's approve flag) need no deep copy; asdict is slow enough to show in a 20,000-step run
    if all(isinstance(v, _SCALARS) for v in values.values()):
        return values
    return dataclasses.asdict(action)  # type: ignore[arg-type]  # an instance: is_dataclass checked it above


def text_space(max_length: int = MAX_TEXT) -> spaces.Text:
    """A ``Text`` space over printable ASCII, so sentences are members."""
    return spaces.Text(max_length=max_length, min_length=0, charset="".join(sorted(PRINTABLE)))


def to_printable(text: str, max_length: int = MAX_TEXT) -> str:
    """Keep observations inside the observation space: printable ASCII, bounded length."""
    return _NON_PRINTABLE.sub("?", text)[-max_length:]


class TextEnv(gym.Env[str, str]):
    """Base class: one decision per step, text observation, text action.

    Invalid action policy (``invalid_action``):
        - ``"penalize"``: nothing is applied, the reward is ``invalid_penalty`` and the same decision is posed
          again (the turn still counts towards the episode length);
        - ``"default"``: the env's default action is applied (``_default_action``) and its task reward given;
        - ``"end"``: as ``"penalize"``, and the episode terminates after ``max_invalid`` invalid actions.
    In every case the next observation says what was wrong, and ``info["action_valid"]`` is ``False``.

    Args:
        max_steps: decisions per episode (the episode is truncated after this many steps).
        invalid_action: one of ``"penalize"``, ``"default"``, ``"end"``.
        invalid_penalty: reward for an invalid action under ``"penalize"`` and ``"end"``.
        max_invalid: invalid actions that end the episode under ``"end"``.
        render_mode: ``None`` or ``"ansi"`` (returns the observation text).
    """

    metadata = {"render_modes": ["ansi"]}
    # Declared by each env class and looked up by id (``fairgym.envs.env_traits``), never guessed from names.
    profile: FamilyProfile | None = None  # the env family's meaning: metrics, plots, rewards, teachers, agents
    discrete_choices: bool = False  # every decision is one of info["choices"] (LLM choice scoring applies)
    pins_group: bool = False  # reset(options={"group": g}) makes g the episode's group (balanced, paired runs)
    groups: tuple[str, ...] = ()
    instructions: str = ""  # the task and action grammar, shown at the top of every observation

    def __init__(
        self,
        *,
        max_steps: int = 20,
        invalid_action: str = "penalize",
        invalid_penalty: float = -1.0,
        max_invalid: int = 3,
        render_mode: str | None = None,
    ) -> None:
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
        if invalid_action not in INVALID_POLICIES:
            raise ValueError(f"invalid_action={invalid_action!r} is not one of {INVALID_POLICIES}")
        if not isinstance(max_invalid, int) or max_invalid < 1:
            raise ValueError(f"max_invalid must be a positive int, got {max_invalid!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r} is not one of {self.metadata['render_modes']}")
        self.max_steps = max_steps
        self.invalid_action = invalid_action
        self.invalid_penalty = float(invalid_penalty)
        self.max_invalid = max_invalid
        self.render_mode = render_mode
        self.observation_space = text_space()
        self.action_space = text_space()
        self._turn = 0
        self._invalid_count = 0
        self._needs_reset = True
        self._last_obs = ""

    # ---- hooks each env fills -------------------------------------------------------------------------
    def _reset_state(self, options: dict[str, Any] | None) -> None:
        """Draw the initial state from ``self.np_random``."""
        raise NotImplementedError

    def parse_action(self, text: str) -> Any:
        """Turn action text into an action dataclass, or a ``ParseError``. Never raises on text."""
        raise NotImplementedError

    def _apply(self, action: Any) -> tuple[float, dict[str, Any], bool]:
        """Apply a valid action; return (task reward, JSON-safe outcome, terminated)."""
        raise NotImplementedError

    def _default_action(self) -> Any:
        """The action applied for invalid text under the ``"default"`` policy."""
        raise NotImplementedError

    def _decision(self) -> Decision:
        """The pending decision (group, choices, observable context)."""
        raise NotImplementedError

    def _observation(self) -> str:
        """The state text of the pending decision (without instructions or feedback)."""
        raise NotImplementedError

    def _messages(self, feedback: str | None) -> list[dict[str, str]] | None:
        """Chat messages for dialogue envs; ``None`` elsewhere."""
        return None

    def start_state(self) -> dict[str, Any] | None:
        """JSON-safe hidden state right after ``reset`` that metrics measure change from (e.g. Lending's group
        means), recorded once per episode as its ``start``; ``None`` when the env has none."""
        return None

    # ---- the contract -------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict]:
        super().reset(seed=seed)
        self._turn = 0
        self._invalid_count = 0
        self._needs_reset = False
        self._reset_state(options)
        return self._emit(feedback=None, valid=True, error=None, action=None, outcome=None)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        if self._needs_reset:
            raise gym.error.ResetNeeded("Call reset() before step(), and again after the episode ends.")
        if not isinstance(action, str):
            raise TypeError(f"{type(self).__name__}.step expects the action as str, got {type(action).__name__}")
        parsed = self.parse_action(action)
        valid = not isinstance(parsed, ParseError)
        error = None if valid else parsed.message
        terminated = False
        outcome: dict[str, Any] | None = None
        if valid:
            reward, outcome, terminated = self._apply(parsed)
        elif self.invalid_action == "default":
            parsed = self._default_action()
            reward, outcome, terminated = self._apply(parsed)
        else:
            parsed, reward = None, self.invalid_penalty
        if not valid:
            self._invalid_count += 1
            terminated = terminated or (self.invalid_action == "end" and self._invalid_count >= self.max_invalid)
        self._turn += 1
        truncated = not terminated and self._turn >= self.max_steps
        self._needs_reset = terminated or truncated
        feedback = None if valid else f"Your last answer was invalid: {error}"
        obs, info = self._emit(feedback=feedback, valid=valid, error=error, action=parsed, outcome=outcome)
        return obs, float(reward), terminated, truncated, info

    def render(self) -> str | None:
        return self._last_obs if self.render_mode == "ansi" else None

    # ---- helpers ------------------------------------------------------------------------------------
    def _emit(self, *, feedback, valid, error, action, outcome) -> tuple[str, dict]:
        parts = [self.instructions, self._observation()]
        if feedback:
            parts.insert(1, feedback)
        obs = to_printable("\n\n".join(p for p in parts if p))
        self._last_obs = obs
        decision = self._decision()
        info: dict[str, Any] = {
            keys.TURN: self._turn,
            keys.GROUP: decision.group,
            keys.CHOICES: list(decision.choices) if decision.choices is not None else None,
            keys.CONTEXT: dict(decision.context),
            keys.ACTION_VALID: valid,
            keys.PARSE_ERROR: error,
            keys.ACTION: action_to_dict(action),
            keys.OUTCOME: outcome,
        }
        messages = self._messages(feedback)
        if messages is not None:
            info[keys.MESSAGES] = messages
        return obs, info
