"""fairgym envs for TRL's ``environment_factory``: an env's decisions as tools, the episode's reward as ``get_reward``.

``GRPOTrainer(environment_factory=tool_env_factory("fairgym/Lending-v0"), ...)`` trains a tool-calling model on
whole fairgym episodes with TRL's own multi-turn loop (no fairgym rollout code): TRL builds one instance per
rollout, calls ``reset(**row)`` (the row's ``seed`` seeds the episode; the first observation is appended to the
prompt), exposes the public methods as tools, feeds each tool's return (the next observation) back to the model,
and scores the finished rollout with ``get_reward()``. The tools are the class each env family's profile names
(``FamilyProfile.tools``):

- Lending: ``approve()`` / ``deny()``;
- Allocation: ``allocate(units)`` with ``units`` a mapping of site to units (``{"North": 2, "South": 4}``);
- Dialogue: ``reply(message)``.

Each tool call is one env step with the text the env's grammar expects (the env parses it: an allocation it
cannot parse is an invalid action under its policy, as in any fairgym episode). ``get_reward`` is the weighted
sum of the episode recipe's reward components (``fairgym.training.episode_rewards``: task return, fairness,
per-turn fairness, toxicity, invalid actions; a component the episode leaves undefined counts 0) over the
episode as recorded (``episode`` gives the record in ``fairgym run``'s format); a decision the model never made
(it stopped calling tools) counts as one invalid action. With ``env_url`` the env is a session of a served env
(``fairgym serve``), so TRL can train in one process on envs served by another.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, ClassVar

from fairgym.agents.runner import make_run_env
from fairgym.config import UnknownNameError
from fairgym.envs import env_traits, records
from fairgym.envs.profiles import resolve
from fairgym.training.config import EPISODE_REWARDS
from fairgym.training.episode_grpo import next_user_turn
from fairgym.training.episode_rewards import applicable_components, component, fairness_metric_for

AGENT_NAME = "trl-environment-factory"
EPISODE_OVER = "The episode is over: there is no decision left. Do not call any more tools."


@dataclass(frozen=True)
class ToolEnvSettings:
    """What every instance of a bound tool-env class plays.

    Attributes:
        env_id / env_kwargs: the env and its arguments. env_url: a ``fairgym serve`` URL (``None``: in process).
        reward_weights: weight per episode reward component (missing ones: ``EPISODE_REWARDS``' defaults).
        fairness_metric: the ``fairness/`` metric the fairness components penalise (``None``: the env's default).
        seed: first seed of a ``reset`` without one (then ``seed + 1``, ...).
    """

    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    env_url: str | None = None
    reward_weights: dict[str, float] = field(default_factory=dict)
    fairness_metric: str | None = None
    seed: int = 0


class FairgymToolEnv:
    """Base of the tool envs (see the module docstring); a family's subclass adds its tools, and
    ``tool_env_factory`` binds the settings. Only public methods are tools, so helpers here are private."""

    settings: ClassVar[ToolEnvSettings]
    hint: ClassVar[str] = ""  # appended to the first observation: how to decide with this family's tools
    _seeds: ClassVar[Any] = None

    def __init__(self) -> None:
        settings = self.settings
        self._env = make_run_env(settings.env_id, dict(settings.env_kwargs), settings.env_url)
        self._steps: list[dict[str, Any]] = []
        self._seed: int | None = None
        self._start: dict[str, Any] | None = None
        self._observation = ""
        self._info: dict[str, Any] = {}
        self._done = True

    def reset(self, seed: int | None = None, **row: Any) -> str:
        """Start the episode of ``seed`` (a dataset column; TRL passes the row) and return its first observation."""
        if seed is None:
            seed = next(type(self)._seeds)
        self._seed = int(seed)
        self._observation, self._info = self._env.reset(seed=self._seed)
        start_state = getattr(self._env.unwrapped, "start_state", None)
        self._start = start_state() if start_state else None
        self._steps, self._done = [], False
        return f"{self._observation}\n\n{self.hint}"

    def _act(self, text: str) -> str:
        """One env step with ``text``; the tool's answer is the next observation, or the end of the episode."""
        if self._done:
            return EPISODE_OVER
        observation, reward, terminated, truncated, info = self._env.step(text)
        self._steps.append(records.step_record(self._observation, self._info, text, reward, info,
                                               terminated=terminated, truncated=truncated))
        self._observation, self._info, self._done = observation, info, bool(terminated or truncated)
        if self._done:
            return f"{EPISODE_OVER} Its return: {sum(s['reward'] for s in self._steps):g}."
        return next_user_turn(self._env, observation, info)["content"]

    @property
    def episode(self) -> dict[str, Any]:
        """The episode so far as a ``fairgym run`` record."""
        settings = self.settings
        return records.episode_record(env_id=settings.env_id, env_kwargs=dict(settings.env_kwargs),
                                      seed=self._seed if self._seed is not None else -1, index=0, agent=AGENT_NAME,
                                      groups=list(getattr(self._env.unwrapped, "groups", ())), steps=self._steps,
                                      start=self._start)

    def _unplayed(self) -> int:
        """Decisions of the episode the model never made (it stopped calling tools before the end)."""
        return 0 if self._done else max(int(self._env.unwrapped.max_steps) - len(self._steps), 0)

    def get_reward(self) -> float:
        """The weighted sum of the episode's reward components; each unplayed decision counts as invalid."""
        settings, episode = self.settings, self.episode
        weights = {**EPISODE_REWARDS, **settings.reward_weights}
        metric = fairness_metric_for(settings.env_id, settings.fairness_metric)
        total = 0.0
        for name in applicable_components(settings.env_id, settings.fairness_metric):
            value = component(name, metric)(episode) if episode["steps"] else None
            total += weights[name] * (value or 0.0)
        return total - weights["invalid_actions"] * self._unplayed()

    def _close(self) -> None:
        """Release the env (a served env's session). Private: TRL exposes every public method as a tool."""
        self._env.close()


class LendingTools(FairgymToolEnv):
    """Lending's decisions as tools: approve or deny the pending application."""

    hint = "Decide by calling one tool: approve or deny."

    def approve(self) -> str:
        """Approve the pending loan application.

        Returns:
            The next applicant, or the end of the episode.
        """
        return self._act("approve")

    def deny(self) -> str:
        """Deny the pending loan application.

        Returns:
            The next applicant, or the end of the episode.
        """
        return self._act("deny")


class AllocationTools(FairgymToolEnv):
    """Allocation's decision as a tool: how many units go to each site this step."""

    hint = "Decide by calling the allocate tool with the units for each site."

    def allocate(self, units: dict[str, int]) -> str:
        """Send patrol units to sites for this step (at most the budget in total; sites left out get 0).

        Args:
            units: the number of units per site name, e.g. {"North": 2, "South": 4}.

        Returns:
            What the units found and the next step, or the end of the episode.
        """
        text = ", ".join(f"{site}={n}" for site, n in units.items()) if isinstance(units, dict) else str(units)
        return self._act(text)


class DialogueTools(FairgymToolEnv):
    """Dialogue's decision as a tool: the reply to the interlocutor's latest message."""

    hint = "Answer by calling the reply tool with your message."

    def reply(self, message: str) -> str:
        """Reply to the person's latest message.

        Args:
            message: one short, natural message.

        Returns:
            The person's next message, or the end of the conversation.
        """
        return self._act(str(message))


def tool_env_factory(env_id: str, env_kwargs: dict[str, Any] | None = None, *, env_url: str | None = None,
                     reward_weights: dict[str, float] | None = None, fairness_metric: str | None = None,
                     seed: int = 0) -> type[FairgymToolEnv]:
    """The class TRL's ``environment_factory`` calls (once per rollout): ``env_id``'s family's tools, bound to these
    settings (see ``ToolEnvSettings``).

    Raises:
        ValueError: the env's family names no tools (``FamilyProfile.tools``).
        ValueError: an unknown reward component.
    """
    profile = env_traits(env_id).profile
    base = resolve(profile.tools)
    if base is None:
        raise ValueError(f"{env_id}'s family {profile.family!r} names no tools (FamilyProfile.tools), so TRL's "
                         "environment_factory cannot play it; use recipe grpo-episode's rollout_func path.")
    for name in reward_weights or {}:
        if name not in EPISODE_REWARDS:
            raise UnknownNameError("episode reward component", name, EPISODE_REWARDS)
    settings = ToolEnvSettings(env_id=env_id, env_kwargs=dict(env_kwargs or {}), env_url=env_url,
                               reward_weights={k: float(v) for k, v in (reward_weights or {}).items()},
                               fairness_metric=fairness_metric, seed=seed)
    return type(base.__name__, (base,), {"settings": settings, "_seeds": itertools.count(seed),
                                         "__module__": __name__, "__doc__": base.__doc__})


# ---- the episode recipe through environment_factory ------------------------------------------------------------
SYSTEM_PROMPT = ("You make decisions by calling the tools you are given: one call per decision, until the episode is "
                 "over. Each tool answers with what happened and the next situation.")


def uses_tools(tokenizer: Any) -> bool:
    """Whether the tokenizer's chat template renders a whole tool-calling exchange (TRL's own check)."""
    from trl.chat_template_utils import supports_tool_calling

    return bool(supports_tool_calling(tokenizer))


def _component_funcs(config: Any, log: Any) -> list[Any]:
    """One TRL reward function per reward component, read from each rollout's tool env (logged, weight 0: the
    reward itself is ``get_reward``); the first also appends the rollouts to the run's rollout log."""
    names = applicable_components(config.env_id, config.fairness_metric)
    metric = fairness_metric_for(config.env_id, config.fairness_metric)
    funcs = []
    for position, name in enumerate(names):
        compute = component(name, metric)

        def reward(prompts: list, completions: list, environments: list | None = None, _compute: Any = compute,
                   _log: bool = position == 0, trainer_state: Any = None, **kw: Any) -> list[float | None]:
            episodes = [env.episode for env in environments or []]
            if _log and log is not None:
                _write_rollouts(log, episodes, int(getattr(trainer_state, "global_step", 0) or 0))
            return [_compute(e) if e["steps"] else None for e in episodes]

        reward.__name__ = name
        funcs.append(reward)
    return funcs


def _write_rollouts(log: Any, episodes: list[dict[str, Any]], step: int) -> None:
    """Append the rollouts in which the model made at least one decision (one that called no tool played no
    episode; their count is logged as ``rollout/undecided``)."""
    played = [{**e, "index": log.next_index + i, "global_step": step}
              for i, e in enumerate(e for e in episodes if e["steps"])]
    if played:
        log.next_index += len(played)
        log.write(played, step, {"rollout/undecided": float(len(episodes) - len(played))})


def build_tool_trainer(config: Any, model: Any, tokenizer: Any, dataset: Any, peft: Any,
                       callbacks: list | None = None, log: Any = None) -> Any:
    """``grpo-episode`` through TRL's ``environment_factory``: the same episodes, seeds and reward components as
    the ``rollout_func`` path (``fairgym.training.episode_grpo``), played by TRL's tool-calling loop.

    Args:
        config: the run's ``TrainConfig``; model / tokenizer: the policy (its template renders tool calls).
        dataset: ``episode_rows`` (one row per episode seed); its prompt becomes a system prompt, and ``reset``
            supplies the first observation.
        peft / callbacks: as ``build_episode_trainer``. log: the run's ``RolloutLog`` (``None``: none).
    """
    import os

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # environment_factory is documented as experimental
    from trl import GRPOConfig, GRPOTrainer

    from fairgym.lm.generation import context_window
    from fairgym.training.episode_grpo import episode_token_estimate
    from fairgym.training.trl_config import trl_config

    factory = tool_env_factory(config.env_id, dict(config.env_kwargs), reward_weights=config.episode_reward_weights,
                               fairness_metric=config.fairness_metric, seed=config.seed)
    funcs = _component_funcs(config, log)
    estimate = episode_token_estimate(config, tokenizer)
    prompt = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": ""}]
    data = dataset.map(lambda row: {"prompt": prompt})
    args = trl_config(config, GRPOConfig, num_generations=config.num_generations, temperature=config.temperature,
                      beta=config.beta, reward_weights=[0.0] * len(funcs), shuffle_dataset=True,
                      max_completion_length=min(context_window(model), estimate["total"]),
                      max_tool_calling_iterations=estimate["steps"])
    return GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=data, processing_class=tokenizer,
                       peft_config=peft, callbacks=callbacks, environment_factory=factory)
