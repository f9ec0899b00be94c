"""``FairgymEnvironment``: the OpenEnv ``Environment`` of one session, around one fairgym Gymnasium env.

OpenEnv's server builds one ``FairgymEnvironment`` per session (each WebSocket connection, or each HTTP session
created through ``/mcp``), so every session has its own env instance and its own seed. ``reset`` takes the seed,
the env id and the env's keyword arguments, so one server serves every registered env and a client chooses per
episode; the env is rebuilt only when the id or the arguments change (a reset with a seed makes a reused env's
trajectory the same as a fresh one's, as in fairgym's runner). ``step`` passes the text to ``env.step`` and
returns everything the step gave, ``info`` included.

A client's env arguments go through ``fairgym.envs.make_env`` (unknown names fail with the list of known ones);
arguments that name files or code on the server (``SERVER_ONLY_ARGUMENTS``) are the server's to set
(``fairgym serve --env-opt``), never a client's.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import EnvironmentMetadata

from fairgym.config import UnknownNameError
from fairgym.envs import env_traits, make_env
from fairgym.runfiles import json_safe
from fairgym.serve.models import EnvDescription, EpisodeState, TextAction, TextObservation

# Env arguments naming a file or an importable object: a remote client must not make the server load either.
SERVER_ONLY_ARGUMENTS = ("templates_path", "openings", "toxicity_scorer", "render_mode")
RESET_FIELDS = ("seed", "episode_id", "env_id", "env_kwargs", "options")


class SessionError(ValueError):
    """A request this session cannot serve (stepping with no episode in progress); the message says what to do."""


@dataclass(frozen=True)
class EnvCatalog:
    """The envs a server serves and the arguments it fixes.

    Attributes:
        env_ids: the ids clients may reset to (the first is the default).
        env_kwargs: the server's arguments for every served env (clients' arguments override them, except
            ``SERVER_ONLY_ARGUMENTS``).
        client_kwargs: whether a client may pass env arguments at reset at all.
    """

    env_ids: tuple[str, ...]
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    client_kwargs: bool = True

    def resolve(self, env_id: str | None, client: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
        """The env id and arguments of a reset (``ValueError`` naming what is not allowed)."""
        env_id = env_id or self.env_ids[0]
        if env_id not in self.env_ids:
            raise UnknownNameError("served env", env_id, self.env_ids)
        if client is not None and not isinstance(client, dict):
            raise TypeError(f"env_kwargs must be an object of env arguments, got {type(client).__name__}")
        client = dict(client or {})
        if client and not self.client_kwargs:
            raise ValueError(f"this server fixes the env arguments; reset without env_kwargs (got {sorted(client)})")
        locked = sorted(set(client) & set(SERVER_ONLY_ARGUMENTS))
        if locked:
            raise ValueError(f"env argument(s) {locked} name files or code on the server: set them when starting "
                             "the server (fairgym serve --env-opt KEY=VALUE), not at reset")
        return env_id, {**self.env_kwargs, **client}


def public_parameters(env: Any) -> dict[str, Any]:
    """The env's public settings as built: each public attribute its constructor set whose value is plain data
    (numbers, strings, lists, dicts, numpy arrays), converted to JSON; objects (spaces, scorers) are left out."""
    out = {}
    for name, value in vars(env.unwrapped).items():
        if name.startswith("_") or name in ("np_random", "spec"):
            continue
        try:
            out[name] = json.loads(json.dumps(value, default=_numpy_default))
        except (TypeError, ValueError):
            continue
    return out


def _numpy_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(type(value).__name__)


def default_action_text(env: Any) -> str | None:
    """The text of the action the ``"default"`` invalid-action policy applies now, or ``None`` when the env has
    no default action."""
    base = env.unwrapped
    try:
        return str(base.format_action(base._default_action()))
    except (AttributeError, NotImplementedError):
        return None


class FairgymEnvironment(Environment[TextAction, TextObservation, EpisodeState]):
    """One session's env (see the module docstring).

    Args:
        catalog: what the server serves and fixes.
    """

    SUPPORTS_CONCURRENT_SESSIONS = True  # each session owns its env; nothing mutable is shared

    def __init__(self, catalog: EnvCatalog) -> None:
        super().__init__()
        self.catalog = catalog
        self._env: Any = None
        self._built: tuple[str, str] | None = None  # (env id, its arguments as JSON) of self._env
        self._parameters: dict[str, Any] = {}
        self._state = EpisodeState()

    def _build(self, env_id: str, env_kwargs: dict[str, Any]) -> Any:
        key = (env_id, json.dumps(env_kwargs, sort_keys=True, default=str))
        if key != self._built:
            if self._env is not None:
                self._env.close()
            self._env = make_env(env_id, **env_kwargs)
            self._parameters = public_parameters(self._env)
            self._built = key
        return self._env

    def reset(self, seed: int | None = None, episode_id: str | None = None, env_id: str | None = None,
              env_kwargs: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
              **unknown: Any) -> TextObservation:
        """Start an episode of ``env_id`` (default: the server's first env) with ``env_kwargs`` and ``seed``.

        Raises:
            ValueError: unknown fields, an env this server does not serve, or arguments it does not allow.
            TypeError: an argument the env does not take (the message lists those it does).
        """
        if unknown:
            raise ValueError(f"reset got unknown field(s) {sorted(unknown)}; it takes {', '.join(RESET_FIELDS)}")
        env_id, kwargs = self.catalog.resolve(env_id, env_kwargs)
        env = self._build(env_id, kwargs)
        observation, info = env.reset(seed=seed, options=options)
        start_state = getattr(env.unwrapped, "start_state", None)
        traits = env_traits(env_id)
        self._state = EpisodeState(episode_id=episode_id or uuid.uuid4().hex, step_count=0, env_id=env_id,
                                   env_kwargs=kwargs, seed=seed, done=False)
        description = EnvDescription(env_id=env_id, family=traits.family, discrete_choices=traits.discrete_choices,
                                     groups=list(getattr(env.unwrapped, "groups", ())), parameters=self._parameters,
                                     default_action=default_action_text(env))
        return TextObservation(text=observation, info=info, reward=None, done=False, env=description,
                               start=json_safe(start_state()) if start_state else None)

    def step(self, action: TextAction, timeout_s: float | None = None, **kwargs: Any) -> TextObservation:
        """Apply the action text; the env parses it (text it cannot parse is an invalid action, not an error).

        Raises:
            SessionError: no episode is in progress (never reset, or the last one ended).
        """
        if self._env is None or self._state.done:
            ended = "ended" if self._env is not None else "not started"
            raise SessionError(f"this session's episode has {ended}: send a reset (with a seed) before stepping")
        observation, reward, terminated, truncated, info = self._env.step(action.text)
        self._state.step_count += 1
        self._state.done = bool(terminated or truncated)
        return TextObservation(text=observation, info=info, reward=float(reward), done=self._state.done,
                               terminated=bool(terminated), truncated=bool(truncated))

    @property
    def state(self) -> EpisodeState:
        return self._state

    def get_metadata(self) -> EnvironmentMetadata:
        from fairgym import __version__

        return EnvironmentMetadata(
            name="fairgym", version=__version__,
            description="Multi-step fairness decisions (lending, allocation, dialogue) posed to LLM agents as text; "
                        f"serves {', '.join(self.catalog.env_ids)}; choose one with reset(env_id=...).")

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None
            self._built = None
