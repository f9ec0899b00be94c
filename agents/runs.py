"""A run folder: ``RunConfig`` (one ``fairgym run``), the checks before anything is written, and ``execute``.

``execute(config)`` builds the agent, checks it against the env, writes ``config.yaml`` (resolved), runs the
seeded episodes into ``episodes.jsonl`` (a rerun resumes), and writes ``metrics.json``; it logs to W&B when the
config asks (offline unless configured). Every argument is checked before anything is written, and a folder
holding another run's episodes is refused, so bad input loses nothing. ``fairgym run`` parses its flags into a
``RunConfig`` and calls it; a script does the same with ``RunConfig(...)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from fairgym.agents.options import LLMOptions, default_decide
from fairgym.config import load_saved_config, save_config, to_dict, with_defaults
from fairgym.locks import folder_lock
from fairgym.runfiles import CONFIG_FILE, METRICS_FILE

# Fields that must match for episodes already in the output folder to belong to this run.
IDENTITY_FIELDS = ("env", "agent", "seed", "env_kwargs", "agent_kwargs", "llm", "balance_groups")


@dataclass
class RunConfig:
    """One ``fairgym run``.

    Attributes:
        env: registered env id (``fairgym envs list``).
        agent: registered agent name (``random``, ``constant``, ``max-utility``, ``eo-threshold``,
            ``fair-oracle``, ``polite``, ``llm``).
        episodes: number of episodes; episode ``i`` is seeded with ``seed + i``.
        seed: base seed of envs and agent.
        out: run folder; default ``runs/<env name>-<agent>-s<seed>``.
        num_envs: env copies stepped together per agent call.
        record_observations: keep each step's observation text in ``episodes.jsonl`` (training data and LLM
            replays read it); ``false`` writes null there, for long episodes only metrics will read.
        env_kwargs: keyword arguments of the env (``max_steps``, ``descriptors``, ...).
        agent_kwargs: keyword arguments of the agent (e.g. ``threshold`` for ``max-utility``).
        llm: options of the ``llm`` agent; ``llm.decide`` defaults to the env's declaration (choice scoring where
            decisions are discrete choices, generation elsewhere).
        balance_groups: play every seed once per group of the env (``reset(options={"group": g})``), so groups
            are compared on paired episodes (``episodes`` seeds x groups episodes; the report pairs them). Envs
            whose class declares ``pins_group`` take it: Dialogue (the interlocutor's group) and Lending (every
            applicant of the episode from that group, the same random numbers for each group).
        wandb: log the run to W&B (offline unless ``WANDB_MODE``/login say otherwise).
        wandb_project: W&B project.
        env_url: play on the env served at this URL (``fairgym serve``) instead of in this process; the records
            and metrics are the same, so it is not part of the run's identity (a run may resume either way).
    """

    env: str = "fairgym/Lending-v0"
    agent: str = "random"
    episodes: int = 20
    seed: int = 0
    out: str | None = None
    num_envs: int = 8
    record_observations: bool = True
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    agent_kwargs: dict[str, Any] = field(default_factory=dict)
    llm: LLMOptions = field(default_factory=LLMOptions)
    balance_groups: bool = False
    wandb: bool = True
    wandb_project: str = "fairgym"
    env_url: str | None = None

    # version -> what changed (fairgym.config.check_schema refuses resuming a folder saved before a change)
    SCHEMA_CHANGES: ClassVar[dict[int, str]] = {
        1: "run folders record a schema version and admit one writer at a time; duplicated episodes are named"}

    def __post_init__(self) -> None:
        for name, low in (("episodes", 1), ("seed", 0), ("num_envs", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"RunConfig.{name}={getattr(self, name)!r} must be >= {low}.")
        if self.agent != "llm" and self.llm != LLMOptions():
            raise ValueError(f"LLM options ({_changed_llm(self.llm)}) apply to --agent llm only, not "
                             f"{self.agent!r}; drop them or use --agent llm.")
        if self.agent == "llm" and self.llm.decide is None:
            self.llm.decide = default_decide(self.env)
        if self.out is None:
            self.out = f"runs/{self.env.split('/')[-1]}-{self.agent}-s{self.seed}"

    def agent_arguments(self) -> dict[str, Any]:
        """Keyword arguments for ``make_agent``: the LLM options too when the agent is ``llm``."""
        if self.agent == "llm":
            return {**dataclasses.asdict(self.llm), **self.agent_kwargs}
        return dict(self.agent_kwargs)


def _changed_llm(options: LLMOptions) -> str:
    default = LLMOptions()
    return ", ".join(f"{f.name}={getattr(options, f.name)!r}" for f in dataclasses.fields(options)
                     if getattr(options, f.name) != getattr(default, f.name))


def check_run_folder(cfg: RunConfig) -> None:
    """Refuse a folder whose ``config.yaml`` describes a different run (its episodes would be mixed)."""
    path = Path(str(cfg.out)) / CONFIG_FILE
    if not path.exists():
        return
    old, new = with_defaults(RunConfig, load_saved_config(RunConfig, path)), to_dict(cfg)
    for key in IDENTITY_FIELDS:  # a field newer than the saved file counts at its default
        if old.get(key) != new[key]:
            raise ValueError(f"{cfg.out} holds a run with {key}={old.get(key)!r}, not {new[key]!r}. "
                             "Pick another --out, or rerun with the recorded settings to resume it.")


def prepare(cfg: RunConfig) -> Any:
    """Build the agent and check it against the env before anything is written (errors name what exists)."""
    from fairgym.agents import make_agent
    from fairgym.agents.runner import calibrate, make_run_env, pinnable_groups

    agent = make_agent(cfg.agent, **cfg.agent_arguments())
    env = make_run_env(cfg.env, cfg.env_kwargs, cfg.env_url)
    if cfg.balance_groups:
        pinnable_groups(env)  # an env that cannot pin a group fails here, before anything is written
    calibrate(agent, env, cfg.seed)
    env.close()
    return agent




@dataclass
class RunResult:
    """What ``execute`` produced: the run folder, every episode record (recorded and new) and their metrics."""

    folder: Path
    episodes: list[dict[str, Any]]
    metrics: dict[str, float]


def execute(cfg: RunConfig) -> RunResult:
    """Check, run the episodes (resuming), write metrics, log to W&B when ``cfg.wandb``; see the module doc.

    The run folder is locked for the whole call (``fairgym.locks``): a second writer is refused at once.
    """
    with folder_lock(str(cfg.out)):
        return _execute(cfg)


def _execute(cfg: RunConfig) -> RunResult:
    from fairgym.agents.runner import run_episodes
    from fairgym.analysis.metrics import compute_metrics, write_metrics

    check_run_folder(cfg)
    agent = prepare(cfg)
    out = Path(str(cfg.out))
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / CONFIG_FILE)
    episodes = run_episodes(cfg.env, agent, episodes=cfg.episodes, seed=cfg.seed, out_dir=out,
                            env_kwargs=cfg.env_kwargs, num_envs=cfg.num_envs,
                            record_observations=cfg.record_observations, env_url=cfg.env_url,
                            balance_groups=cfg.balance_groups)
    metrics = compute_metrics(episodes)
    write_metrics(out / METRICS_FILE, metrics)
    if cfg.wandb:
        from fairgym.analysis.wandb_log import log_run

        log_run(out, to_dict(cfg), metrics, episodes, project=cfg.wandb_project, name=out.name)
    return RunResult(out, episodes, metrics)
