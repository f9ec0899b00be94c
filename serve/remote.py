"""``RemoteEnv``: a served env seen as a ``gymnasium.Env``, so fairgym's runner and agents drive it as a local one.

``make_remote_env(url, env_id, **env_kwargs)`` asks the server what it serves (``GET /fairgym/envs``) and returns a
``RemoteEnv`` whose class declares the env's family and decision form, as the local env class does (so
``fairgym.envs.env_traits(env)`` and every agent's applies-to check read the same). Each ``RemoteEnv`` holds one
WebSocket session (``FairgymEnvClient``), opened at the first ``reset``.

What agents read from a local env they read here from the server's answer to ``reset``: ``groups``,
``instructions`` and the env's other public settings (e.g. Lending's ``repay_probabilities``, for the threshold
agents' calibration) as attributes, ``start_state()``, and the default action (``_default_action()`` gives its
text, and ``format_action`` returns text as it is). Steps return the server's observation, reward, flags and
``info`` unchanged, so records and metrics equal a local run's for the same seeds.

Every failure is one ``EnvServerError``: a request the server refused (its message), or a lost session (the server
stopped, or closed the session after ``session_timeout`` idle seconds), naming the URL, the env and the episode.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from functools import cache
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import EnvSpec

from fairgym.config import UnknownNameError
from fairgym.envs.core import text_space
from fairgym.envs.profiles import FamilyProfile
from fairgym.serve.client import FairgymEnvClient
from fairgym.serve.errors import EnvServerError, SessionClosedError


def served_envs(url: str, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """``GET {url}/fairgym/envs``: the envs a fairgym server serves.

    Raises:
        EnvServerError: nothing answers at ``url``, or what answers is not a fairgym server.
    """
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/fairgym/envs", timeout=timeout_s) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise EnvServerError(f"no fairgym env server answers at {url} ({exc}); start one with `fairgym serve` "
                             "or pass the URL it prints") from None


@cache
def remote_class(env_id: str, family: str, discrete_choices: bool) -> type[RemoteEnv]:
    """The ``RemoteEnv`` subclass declaring the served env's family profile and ``discrete_choices``: the profile
    of the env registered under ``env_id`` here when there is one (its metrics, figures, policies), else a generic
    profile of ``family`` (generic metrics only)."""
    from fairgym.envs import env_profile
    from fairgym.envs.profiles import generic_profile

    try:
        profile = env_profile(env_id)
    except UnknownNameError:
        profile = generic_profile(family)
    return type(f"Remote{family}Env", (RemoteEnv,), {"profile": profile, "discrete_choices": discrete_choices,
                                                     "__module__": __name__})


def make_remote_env(url: str, env_id: str, *, timeout_s: float = 60.0, **env_kwargs: Any) -> RemoteEnv:
    """A ``RemoteEnv`` of ``env_id`` on the server at ``url`` with ``env_kwargs`` (checked before any session opens).

    Raises:
        EnvServerError: no server at ``url``.
        UnknownNameError: the server does not serve ``env_id`` (the message lists what it does).
        TypeError: an argument the env does not take (the message lists those it does).
    """
    served = {entry["env_id"]: entry for entry in served_envs(url)}
    if env_id not in served:
        raise UnknownNameError(f"env served at {url}:", env_id, served)
    entry = served[env_id]
    unknown = [k for k in env_kwargs if k not in entry["arguments"]]
    if unknown:
        raise TypeError(f"{env_id} got unknown argument(s) {unknown}; it takes: {', '.join(entry['arguments'])}.")
    cls = remote_class(env_id, entry["family"], bool(entry["discrete_choices"]))
    return cls(url, env_id, env_kwargs, timeout_s=timeout_s)


class RemoteEnv(gym.Env[str, str]):
    """One session of a served env as a Gymnasium env (build it with ``make_remote_env``).

    Args:
        url: the server's base URL (``http://host:port``).
        env_id: the served env id.
        env_kwargs: the env's arguments, sent with every reset.
        timeout_s: seconds to wait for each answer before the session counts as lost.
    """

    metadata = {"render_modes": ["ansi"]}
    profile: FamilyProfile | None = None
    discrete_choices: bool = False

    def __init__(self, url: str, env_id: str, env_kwargs: dict[str, Any] | None = None, *,
                 timeout_s: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs or {})
        self.timeout_s = float(timeout_s)
        self.spec = EnvSpec(id=env_id, entry_point=f"{__name__}:{type(self).__name__}", kwargs=dict(self.env_kwargs))
        self.observation_space = text_space()
        self.action_space = text_space()
        self._client: Any = None
        self._parameters: dict[str, Any] = {}
        self._start: dict[str, Any] | None = None
        self._default_text: str | None = None
        self._last_obs = ""
        self._episode: tuple[int | None, int] = (None, 0)  # (seed, steps taken) of the episode in play

    # ---- what agents read, as from a local env --------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        # only reached for names the object lacks: the env's public settings from the last reset
        parameters = self.__dict__.get("_parameters") or {}
        if name in parameters:
            return parameters[name]
        raise AttributeError(f"{type(self).__name__} of {self.__dict__.get('env_id')} has no attribute {name!r}"
                             + ("" if parameters else " (the env's settings arrive with the first reset)"))

    def start_state(self) -> dict[str, Any] | None:
        """The env's state at the last reset, as the server reported it (an episode record's ``start``)."""
        return self._start

    def _default_action(self) -> str:
        if self._default_text is None:
            raise NotImplementedError(f"{self.env_id} reported no default action")
        return self._default_text

    def format_action(self, action: Any) -> str:
        """A remote env's actions are already text."""
        return str(action)

    # ---- the contract ---------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict]:
        super().reset(seed=seed)
        if self._client is None:
            self._client = FairgymEnvClient(base_url=self.url, message_timeout_s=self.timeout_s).sync()
        self._episode = (seed, 0)
        request = {"seed": seed, "env_id": self.env_id, "env_kwargs": self.env_kwargs}
        if options is not None:
            request["options"] = options
        result = self._call("reset", lambda: self._client.reset(**request))
        observation = result.observation
        if observation.env is not None:
            self._parameters = dict(observation.env.parameters)
            self._parameters["groups"] = list(observation.env.groups)
            self._default_text = observation.env.default_action
        self._start = observation.start
        self._last_obs = observation.text
        return observation.text, observation.info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        if not isinstance(action, str):
            raise TypeError(f"{type(self).__name__}.step expects the action as str, got {type(action).__name__}")
        if self._client is None:
            raise gym.error.ResetNeeded("Call reset() before step().")
        from fairgym.serve.models import TextAction

        result = self._call("step", lambda: self._client.step(TextAction(text=action)))
        self._episode = (self._episode[0], self._episode[1] + 1)
        observation = result.observation
        self._last_obs = observation.text
        return (observation.text, float(result.reward or 0.0), bool(observation.terminated),
                bool(observation.truncated), observation.info)

    def render(self) -> str | None:
        return self._last_obs

    def close(self) -> None:
        """Close the session (the server releases its env); safe when the server is gone."""
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - the session is gone either way; closing must not raise
                pass

    # ---- errors ----------------------------------------------------------------------------------------
    def _call(self, what: str, request: Any) -> Any:
        try:
            return request()
        except RuntimeError as exc:
            if isinstance(exc, EnvServerError):
                raise
            if str(exc).startswith("Server error:"):  # an error frame: the request was refused, the session lives
                raise EnvServerError(f"the env server at {self.url} refused {what} of {self.env_id}: "
                                     f"{str(exc)[len('Server error:'):].strip()}") from None
            raise self._lost(what, exc) from None
        except (SessionClosedError, ConnectionError, OSError, TimeoutError) as exc:
            raise self._lost(what, exc) from None
        except Exception as exc:  # websockets' ConnectionClosed and its kin
            if type(exc).__module__.startswith("websockets"):
                raise self._lost(what, exc) from None
            raise

    def _lost(self, what: str, cause: BaseException) -> EnvServerError:
        self.close()
        seed, steps = self._episode
        return EnvServerError(
            f"lost the session with the env server at {self.url} during {what} of {self.env_id} (episode seed "
            f"{seed}, after {steps} steps): {cause or type(cause).__name__}. The episode cannot continue; check the "
            "server (`fairgym serve`) and rerun (a run folder resumes from its last finished episode).")
