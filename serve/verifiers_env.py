"""fairgym envs as a verifiers environment (the Prime Environments Hub's format): ``load_environment``.

``load_environment("fairgym/Lending-v0")`` returns a ``verifiers`` multi-turn environment built on its Gymnasium
runner (``verifiers.GymEnv``): each dataset row is one episode seed (train seeds ``seed ..``, then the eval seeds),
the prompt is the env's first observation, each model turn is one ``env.step`` with the reply's text (the env
parses it), and the next observation comes back as the user turn. The reward is the episode's return as the env
reports it (``task_return``); ``invalid_actions`` (replies the env could not parse) is logged as a metric beside it,
and each turn keeps the env's full ``info`` (``state["trajectory"][i]["extras"]["gym_info"]``). With ``env_url``
the env is a session of a served env (``fairgym serve``) instead of one in process.

``ScriptedClient`` answers as a Python function does (e.g. one of fairgym's baseline agents), so an environment
can be evaluated offline, without a model server: ``env.evaluate_sync(ScriptedClient(policy), model="name")``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import verifiers as vf
from verifiers.clients import Client

from fairgym.envs import keys, make_env

SYSTEM_PROMPT = ("You are a careful decision-maker. Read the situation and answer exactly in the format the "
                 "instructions ask for, with no extra text.")


def _env_factory(env_id: str, env_url: str | None) -> Callable[..., Any]:
    def make(**env_kwargs: Any) -> Any:
        if env_url:
            from fairgym.serve.remote import make_remote_env

            return make_remote_env(env_url, env_id, **env_kwargs)
        return make_env(env_id, **env_kwargs)

    return make


def task_return(state: vf.State, **kwargs: Any) -> float:
    """The episode's return: the env's step rewards summed."""
    return float(sum(float(step.get("reward") or 0.0) for step in state.get("trajectory", [])))


def invalid_actions(state: vf.State, **kwargs: Any) -> float:
    """Replies the env could not parse (its ``info["action_valid"]`` was false)."""
    infos = [(step.get("extras") or {}).get("gym_info") or {} for step in state.get("trajectory", [])]
    return float(sum(info.get(keys.ACTION_VALID) is False for info in infos))


def load_environment(env_id: str = "fairgym/Lending-v0", env_kwargs: dict[str, Any] | None = None,
                     env_url: str | None = None, num_train_episodes: int = 100, num_eval_episodes: int = 20,
                     seed: int = 0, **kwargs: Any) -> vf.Environment:
    """The verifiers environment of ``env_id`` (see the module docstring).

    Args:
        env_id: a registered fairgym env id.
        env_kwargs: the env's arguments (e.g. ``{"max_steps": 10}``).
        env_url: a ``fairgym serve`` URL to play on (``None``: in process).
        num_train_episodes / num_eval_episodes: dataset rows (one episode seed each).
        seed: the first seed (train seeds first, then eval seeds).
        **kwargs: further ``verifiers.GymEnv`` arguments (e.g. ``system_prompt``, ``parser``).
    """
    env_kwargs = dict(env_kwargs or {})
    factory = _env_factory(env_id, env_url)
    probe = factory(**env_kwargs)  # fails here on an unknown env or argument, before any dataset is built
    probe.reset(seed=seed)  # a served env reports its settings at reset
    max_steps = int(probe.unwrapped.max_steps)
    probe.close()
    rubric = vf.Rubric(funcs=[task_return, invalid_actions], weights=[1.0, 0.0])
    return vf.GymEnv(env_cls=factory, env_kwargs=env_kwargs, num_train_episodes=num_train_episodes,
                     num_eval_episodes=num_eval_episodes, max_episode_steps=max_steps + 1, seed=seed,
                     system_prompt=kwargs.pop("system_prompt", SYSTEM_PROMPT), rubric=rubric, **kwargs)


class ScriptedClient(Client):
    """A verifiers client that answers with ``respond(messages) -> str`` instead of calling a model server.

    Args:
        respond: the reply to a chat (a list of ``{"role", "content"}`` dicts).
    """

    def __init__(self, respond: Callable[[list[dict[str, Any]]], str]) -> None:
        super().__init__(respond)

    def setup_client(self, config: Any) -> Any:
        raise TypeError("ScriptedClient takes the respond function, not a client config")

    async def to_native_tool(self, tool: Any) -> Any:
        return tool

    async def to_native_prompt(self, messages: Any) -> tuple[list[dict[str, Any]], dict]:
        chat = []
        for message in messages:
            data = message if isinstance(message, dict) else message.model_dump()
            chat.append({"role": data.get("role"), "content": data.get("content")})
        return chat, {}

    async def get_native_response(self, prompt: list[dict[str, Any]], model: str, sampling_args: Any,
                                  tools: Any = None, **kwargs: Any) -> vf.Response:
        message = vf.ResponseMessage(content=str(self.client(prompt)), finish_reason="stop", is_truncated=False)
        return vf.Response(id=uuid.uuid4().hex, created=int(time.time()), model=model, message=message)

    async def raise_from_native_response(self, response: Any) -> None:
        return None

    async def from_native_response(self, response: Any) -> vf.Response:
        return response

    async def close(self) -> None:
        return None
