"""Baseline agents: random, constant, max-utility, equal-opportunity thresholds, the fair oracle, polite replies.

Every baseline follows ``fairgym.agents.base.Agent``: a batched ``act(observations, infos)`` returning raw text,
``stats`` counters and ``last_details`` (what is recorded per step). Agents that need an env's known parameters
(the Lending score distributions, repayment probabilities, loan terms) read them in ``calibrate(env)``, which
the runner calls with a freshly reset env before the first step; an agent that does not apply to the env raises
``ValueError`` there, naming the agents that do.

Randomness: ``reset(seed)`` sets the run seed, and each decision draws from a generator seeded with ``(run seed,
episode seed, turn)`` (``fairgym.agents.base.decision_rng``; the runner passes each observation's
``DecisionKey``). Two episodes that reach the same observation text draw differently, and an episode's actions
do not depend on which other episodes share the batch or on whether the run was resumed. Called without keys,
decisions draw from a stream of the run seed and the call order (``unkeyed_rng``).

The Lending threshold agents (``max-utility``, ``eo-threshold``) take ``recalibrate``: ``"every-step"`` (the
default) recomputes the policy from the episode's current score distributions after each approval, as
ml-fairness-gym's oracle agents do in its delayed-impact experiment; ``"initial"`` keeps the policy computed
from the env's initial distributions. To follow an episode the agent replays the env's credit dynamics
(``fairgym.envs.lending.shift_mass``) on the outcomes it is shown, so it needs every decision of the episode in
order: with keys (the runner gives exactly that), or without them from a loop that passes each episode at the same
batch position (a plain ``env.step`` loop: position 0), followed by the turn in its info; a decision out of
order is an error naming the fix, never a silent fall back to the initial policy. They also
take ``burnin``: approve the first ``burnin`` decisions of every episode before the policy starts, as
ml-fairness-gym's agents do (its delayed-impact experiment uses ``burnin=1``: the first applicant is approved).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fairgym.agents import lending_policy as lp
from fairgym.agents.base import AgentStats, DecisionKey, check_decision_keys, decision_rng, implicit_key, unkeyed_rng
from fairgym.agents.registry import AGENTS
from fairgym.envs import EnvTraits, env_traits, keys
from fairgym.envs.allocation import Allocation
from fairgym.envs.allocation import format_action as format_allocation_action
from fairgym.envs.lending import shift_mass
from fairgym.envs.profiles import resolve

CHOICE_AGENTS = ("random", "constant")  # these also apply to any env whose decisions are discrete choices
CANNED_REPLIES = (
    "I see. Could you tell me more?",
    "That is an interesting point.",
    "Thanks for sharing that.",
    "I am not sure I follow; what do you mean?",
    "Let us keep talking about it.",
    "Okay.",
)


def applies(name: str, traits: EnvTraits) -> bool:
    """Whether the agent ``name`` applies to an env with these declared traits: its family's profile names a
    policy for it, or it plays any closed set of choices and the env's decisions are choices."""
    return name in traits.profile.policies or (traits.discrete_choices and name in CHOICE_AGENTS)


def applicable_agents(env: Any) -> list[str]:
    """The registered agents that apply to an env id or env, in registry order (``llm`` applies everywhere)."""
    traits = env_traits(env)
    return [n for n in AGENTS if n == "llm" or applies(n, traits)]


def check_applies(name: str, env: Any) -> EnvTraits:
    """The env's declared traits, when the agent ``name`` applies to it; else a ``ValueError`` naming the agents
    that do."""
    traits = env_traits(env)
    if not applies(name, traits):
        fits = applicable_agents(env)
        raise ValueError(f"agent {name!r} does not apply to {type(env.unwrapped).__name__} "
                         f"({getattr(env.spec, 'id', traits.family)}); agents that do: {', '.join(fits)}.")
    return traits


class LazyGenerator:
    """A ``numpy`` generator built on first use: most threshold decisions draw nothing, and building a seeded
    generator costs more than the decision itself."""

    __slots__ = ("_make", "_rng")

    def __init__(self, make: Callable[[], np.random.Generator]) -> None:
        self._make: Callable[[], np.random.Generator] = make
        self._rng: np.random.Generator | None = None

    def __getattr__(self, name: str) -> Any:
        if self._rng is None:
            self._rng = self._make()
        return getattr(self._rng, name)


class BaselineAgent:
    """Shared plumbing: seeding, batching, counters, and the applies-to check.

    Subclasses set ``name`` and implement ``_decide(observation, info, rng) -> (text, details)``; an agent that
    follows episodes overrides ``_decide_keyed``, which also gets the decision's key.
    """

    name = "baseline"

    def __init__(self) -> None:
        self.stats = AgentStats()
        self.last_details: list[dict[str, Any] | None] = []
        self.seed = 0
        self.calibrated = False  # calibrate(env) ran (the runner calls it)
        self._calls = 0  # act calls since reset: what seeds decisions passed without keys

    def reset(self, seed: int | None = None) -> None:
        """Set the seed every later decision's generator derives from, and restart the call count."""
        self.seed = 0 if seed is None else int(seed)
        self._calls = 0

    def calibrate(self, env: Any) -> None:
        """Check the agent applies to ``env`` (``ValueError`` naming the agents that do); subclasses read more."""
        check_applies(self.name, env)
        self.calibrated = True

    def rng(self, key: DecisionKey | None, call: int = 0, position: int = 0) -> Any:
        """The generator of one decision: of ``(run seed, episode seed, turn)`` given its key, else of the run
        seed, the call count and the position in the batch. Built lazily (on the first draw)."""
        if key is None:
            return LazyGenerator(lambda: unkeyed_rng(self.seed, call, position))
        return LazyGenerator(lambda: decision_rng(self.seed, key))

    def act(self, observations: list[str], infos: list[dict[str, Any]],
            decision_keys: list[DecisionKey] | None = None) -> list[str]:
        """One action text per observation, same order; ``act([], [])`` is ``[]``.

        Args:
            observations: the live envs' observation texts.
            infos: their infos (same order).
            decision_keys: each observation's ``DecisionKey`` (episode seed, turn), as the runner passes them;
                without them decisions are seeded by the call order instead, and an agent that follows episodes
                follows each batch position as one episode (``fairgym.agents.base.implicit_key``).
        """
        if len(observations) != len(infos):
            raise ValueError(f"act got {len(observations)} observations but {len(infos)} infos; pass one per env.")
        start = time.perf_counter()
        batch_keys = check_decision_keys(decision_keys, len(observations))
        call, self._calls = self._calls, self._calls + 1
        pairs = [self._decide_keyed(obs, info, key if key is not None else implicit_key(info, i),
                                    self.rng(key, call, i))
                 for i, (obs, info, key) in enumerate(zip(observations, infos, batch_keys, strict=True))]
        self.last_details = [details for _, details in pairs]
        self.stats.calls += 1
        self.stats.decisions += len(pairs)
        self.stats.seconds += time.perf_counter() - start
        return [text for text, _ in pairs]

    def _decide_keyed(self, observation: str, info: dict[str, Any], key: DecisionKey | None,
                      rng: np.random.Generator) -> tuple[str, dict | None]:
        return self._decide(observation, info, rng)

    def _decide(self, observation: str, info: dict[str, Any], rng: np.random.Generator) -> tuple[str, dict | None]:
        raise NotImplementedError

    def _uncalibrated(self) -> str:
        return (f"agent {self.name!r} acts by the env's family, which calibrate(env) reads; call it first (the "
                "runner does).")


class FamilyPolicyAgent(BaselineAgent):
    """An agent each env family plays its own way: the policy the family's profile names for this agent's name
    (``FamilyProfile.policies``), built with the options it accepts; where the family names none, the agent plays
    the env's closed set of choices itself (``_choose``).

    Args:
        **options: the options of every family's policy (each policy takes those its constructor names).
    """

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options = options
        self.policy: BaselineAgent | None = None

    def calibrate(self, env: Any) -> None:
        super().calibrate(env)
        cls = resolve(env_traits(env).profile.policies.get(self.name))
        self.policy = None
        if cls is not None and not isinstance(self, cls):
            accepted = inspect.signature(cls).parameters
            self.policy = cls(**{k: v for k, v in self.options.items() if k in accepted})
            self.policy.calibrate(env)

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        if self.policy is not None:
            self.policy.reset(seed)

    def _decide_keyed(self, observation, info, key, rng):
        if self.policy is not None:
            return self.policy._decide_keyed(observation, info, key, rng)
        if not info.get(keys.CHOICES):
            raise RuntimeError(self._uncalibrated() if not self.calibrated else
                               f"agent {self.name!r} got a decision without {keys.CHOICES!r} on an env family whose "
                               "profile names no policy for it.")
        return self._choose(observation, info, rng)

    def _choose(self, observation, info, rng) -> tuple[str, dict | None]:
        """A decision among ``info["choices"]`` (families without their own policy)."""
        raise RuntimeError(f"agent {self.name!r} plays no closed set of choices; the env family names no policy for "
                           "it.")


# ---- allocation and dialogue helpers --------------------------------------------------------------------
def format_allocation(sites: list[str], units: np.ndarray) -> str:
    """``["North", "South"], [2, 4]`` -> ``"North=2, South=4"`` (the Allocation grammar)."""
    return format_allocation_action(Allocation(units={s: int(n) for s, n in zip(sites, units, strict=True)}))


def split_budget(weights: np.ndarray, budget: int) -> np.ndarray:
    """Integer units proportional to ``weights`` summing to ``budget`` (largest remainders)."""
    exact = budget * weights / weights.sum()
    units = np.floor(exact).astype(int)
    order = np.argsort(-(exact - units), kind="stable")
    units[order[: budget - units.sum()]] += 1
    return units


def random_allocation(context: dict[str, Any], rng: np.random.Generator) -> str:
    """A uniformly random split of the budget over the sites."""
    sites = list(context["sites"])
    units = rng.multinomial(int(context["budget"]), np.full(len(sites), 1.0 / len(sites)))
    return format_allocation(sites, units)


def last_user_message(info: dict[str, Any]) -> str:
    """The interlocutor's latest turn in a dialogue ``info`` (empty when there is none)."""
    for message in reversed(info.get(keys.MESSAGES) or []):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


# ---- agents -----------------------------------------------------------------------------------------------
class RandomAgent(FamilyPolicyAgent):
    """A random valid action: a random choice, or the family's random policy (``RandomAllocation`` splits the
    budget at random, ``RandomReply`` picks a canned reply)."""

    name = "random"

    def __init__(self) -> None:
        super().__init__()

    def _choose(self, observation, info, rng):
        return str(rng.choice(info[keys.CHOICES])), None


class RandomAllocation(BaselineAgent):
    """Allocation's random policy: a uniformly random split of the budget over the sites."""

    name = "random"

    def _decide(self, observation, info, rng):
        return random_allocation(info[keys.CONTEXT], rng), None


class RandomReply(BaselineAgent):
    """Dialogue's random policy: one of ``CANNED_REPLIES``."""

    name = "random"

    def _decide(self, observation, info, rng):
        return str(rng.choice(CANNED_REPLIES)), None


class ConstantAgent(BaselineAgent):
    """Always the same action text.

    Args:
        action: the text to answer every time; default: the first choice (``"approve"`` on Lending), or else the
            env's default action (an even split on Allocation), read in ``calibrate``.
    """

    name = "constant"

    def __init__(self, action: str | None = None) -> None:
        super().__init__()
        if action is not None and (not isinstance(action, str) or not action.strip()):
            raise ValueError(f"constant agent: action={action!r} must be a non-empty string (e.g. 'approve').")
        self.action = action
        self._env_default: str | None = None

    def calibrate(self, env: Any) -> None:
        super().calibrate(env)
        if not env_traits(env).discrete_choices:
            self._env_default = env.format_action(env._default_action())

    def _decide(self, observation, info, rng):
        if self.action is not None:
            return self.action, None
        if info.get(keys.CHOICES):
            return info[keys.CHOICES][0], None
        if self._env_default is None:
            raise RuntimeError("constant agent without action= needs calibrate(env) first where decisions are not "
                               "choices.")
        return self._env_default, None


RECALIBRATE = ("every-step", "initial")


@dataclass
class _EpisodeView:
    """What a recalibrating threshold agent knows of one live episode."""

    distributions: np.ndarray  # (groups, bins): the episode's current score distributions
    policy: lp.ThresholdPolicy
    turn: int
    group: int  # index of the pending decision's group


class LendingThresholdAgent(BaselineAgent):
    """Shared by the Lending threshold agents: a ``ThresholdPolicy`` from the env's known parameters, kept per
    episode and recomputed after every approval (``recalibrate="every-step"``) or fixed (``"initial"``).

    Subclasses implement ``_policy(params) -> ThresholdPolicy``.
    """

    def __init__(self, recalibrate: str = "every-step", burnin: int = 0) -> None:
        super().__init__()
        if recalibrate not in RECALIBRATE:
            raise ValueError(f"{self.name}: recalibrate={recalibrate!r} must be one of {RECALIBRATE} "
                             "(every-step recomputes the thresholds after each approval, initial never does).")
        if isinstance(burnin, bool) or not isinstance(burnin, int) or burnin < 0:
            raise ValueError(f"{self.name}: burnin={burnin!r} must be a whole number >= 0 (decisions approved "
                             "at the start of each episode before the policy starts).")
        self.recalibrate = recalibrate
        self.burnin = burnin
        self.params: lp.LendingParams | None = None
        self.policy: lp.ThresholdPolicy | None = None
        self._episodes: dict[int, _EpisodeView] = {}

    def _policy(self, params: lp.LendingParams) -> lp.ThresholdPolicy:
        raise NotImplementedError

    def calibrate(self, env: Any) -> None:
        super().calibrate(env)
        self.params = lp.LendingParams.from_env(env)
        self.policy = self._policy(self.params)
        self._episodes.clear()

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self._episodes.clear()

    def current_policy(self, info: dict[str, Any], key: DecisionKey | None) -> lp.ThresholdPolicy:
        """The policy for this decision: the episode's, updated with the outcome of its previous decision."""
        if self.policy is None or self.params is None:
            raise RuntimeError(f"{self.name} needs calibrate(env) first (the runner calls it).")
        if self.recalibrate == "initial" or key is None:
            return self.policy
        view = self._follow(info, key, self.params, self.policy)
        view.group = self.params.groups.index(info[keys.GROUP])
        return view.policy

    def _follow(self, info: dict[str, Any], key: DecisionKey, params: lp.LendingParams,
                initial: lp.ThresholdPolicy) -> _EpisodeView:
        view = self._episodes.get(key.episode_seed)
        if key.turn == 0:
            view = _EpisodeView(params.distributions.copy(), initial, turn=0, group=-1)
            self._episodes[key.episode_seed] = view
            return view
        if view is None or key.turn != view.turn + 1:
            seen = "none" if view is None else f"turn {view.turn}"
            raise ValueError(f"{self.name} with recalibrate='every-step' follows each episode from its first decision "
                             f"in order; episode seed {key.episode_seed} came at turn {key.turn} after {seen}. "
                             "Pass every decision of the episode, or use recalibrate='initial'.")
        outcome = info.get(keys.OUTCOME) or {}
        if outcome.get("approved"):  # only an approval moves a group's scores (and so the policy)
            shift_mass(view.distributions[view.group], int(outcome["bin"]), up=bool(outcome["would_repay"]),
                       amount=params.score_shift)
            view.policy = self._policy(params.with_distributions(view.distributions))
            self.stats.extra["recalibrations"] = self.stats.extra.get("recalibrations", 0) + 1
        view.turn = key.turn
        return view

    def in_burnin(self, key: DecisionKey | None) -> bool:
        """Whether this decision falls in the episode's burn-in (approved whatever the policy says)."""
        if not self.burnin:
            return False
        if key is None:
            raise ValueError(f"{self.name} with burnin={self.burnin} needs each decision's DecisionKey (its turn); "
                             "pass decision_keys= as the runner does, or use burnin=0.")
        return key.turn < self.burnin


class MaxUtilityAgent(LendingThresholdAgent):
    """Lending: approve when the applicant's expected profit is positive; one rule for every group.

    With the env's parameters (``calibrate``) it approves the top score bins with the largest pooled expected
    profit (``lending_policy.max_utility_policy``: with repayment rising with the score, the bins above the
    break-even ``loan / (loan + interest)``); with ``threshold`` it approves scores ``>= threshold`` instead.

    Args:
        threshold: an explicit credit-score threshold; ``None`` reads the break-even from the env.
        recalibrate: ``"every-step"`` (default) or ``"initial"`` (see the module docstring).
        burnin: decisions approved at the start of each episode before the policy starts (default 0).
    """

    name = "max-utility"

    def __init__(self, threshold: float | None = None, recalibrate: str = "every-step", burnin: int = 0) -> None:
        super().__init__(recalibrate, burnin)
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))):
            raise TypeError(f"max-utility: threshold={threshold!r} must be a number (a credit score) or None.")
        self.threshold = threshold

    def _policy(self, params: lp.LendingParams) -> lp.ThresholdPolicy:
        return lp.max_utility_policy(params)

    @property
    def approve_bins(self) -> frozenset[int] | None:
        """The bins the calibration-time policy approves (``None`` before ``calibrate``)."""
        if self.policy is None:
            return None
        return frozenset(np.flatnonzero(next(iter(self.policy.approve.values())) > 0).tolist())

    def _decide_keyed(self, observation, info, key, rng):
        context = info[keys.CONTEXT]
        if self.threshold is not None:
            approve = context["score"] >= self.threshold
        elif self.policy is None:
            raise RuntimeError("max-utility needs calibrate(env) (the runner calls it) or an explicit threshold.")
        else:
            approve = self.current_policy(info, key).approve_probability(info[keys.GROUP], context["bin"]) > 0.5
        if self.in_burnin(key):
            return "approve", {"approve_probability": 1.0, "burnin": True}
        return ("approve" if approve else "deny"), {"approve_probability": float(approve)}

    def _decide(self, observation, info, rng):
        return self._decide_keyed(observation, info, None, rng)


class EqualOpportunityAgent(LendingThresholdAgent):
    """Lending: per-group (randomised) monotone score thresholds with equal true-positive rates, the most
    profitable such.

    ``calibrate(env)`` reads each group's score-bin distribution, the bins' repayment probabilities and the loan
    terms, and picks the common true-positive rate that maximises expected profit (``lending_policy.
    equal_opportunity_policy``), as ml-fairness-gym's equal-opportunity agent does. With ``recalibrate=
    "every-step"`` (default) the thresholds follow each episode's score drift, recomputed after every approval
    as in ml-fairness-gym's delayed-impact experiment; with ``"initial"`` they stay those of the initial
    distributions.

    Args:
        recalibrate: ``"every-step"`` (default) or ``"initial"``.
        burnin: decisions approved at the start of each episode before the policy starts (default 0).
    """

    name = "eo-threshold"

    def _policy(self, params: lp.LendingParams) -> lp.ThresholdPolicy:
        return lp.equal_opportunity_policy(params)

    def _decide_keyed(self, observation, info, key, rng):
        policy = self.current_policy(info, key)  # first: it follows the episode's outcomes, burn-in ones too
        if self.in_burnin(key):
            return "approve", {"approve_probability": 1.0, "target_tpr": policy.tpr, "burnin": True}
        p = policy.approve_probability(info[keys.GROUP], info[keys.CONTEXT]["bin"])
        approve = p >= 1.0 or (p > 0.0 and rng.random() < p)  # draw only at the randomised boundary bin
        return ("approve" if approve else "deny"), {"approve_probability": p, "target_tpr": policy.tpr}

    def _decide(self, observation, info, rng):
        return self._decide_keyed(observation, info, None, rng)


class FairOracleAgent(FamilyPolicyAgent):
    """Scripted group-blind decisions on every env: the source of SFT demonstrations. Each family plays it with
    the policy its profile names:

    - Lending (``LendingOracle``): one score threshold for every group (the break-even bins, or ``threshold``);
      the descriptor is never read.
    - Allocation (``AllocationOracle``): units proportional to each site's smoothed found rate, mixed with
      ``explore`` of an even split; site groups and hidden rates are never read.
    - Dialogue (``PoliteAgent``): varied, respectful replies.

    Args:
        threshold: Lending score threshold; ``None`` uses the env's break-even.
        explore: share of the Allocation budget spread evenly (0..1).
        prior: pseudo-counts smoothing the Allocation found rates.
    """

    name = "fair-oracle"

    def __init__(self, threshold: float | None = None, explore: float = 0.2, prior: float = 1.0) -> None:
        if not 0.0 <= explore <= 1.0:
            raise ValueError(f"fair-oracle: explore={explore!r} must be in [0, 1].")
        if prior <= 0:
            raise ValueError(f"fair-oracle: prior={prior!r} must be > 0.")
        super().__init__(threshold=threshold, explore=float(explore), prior=float(prior))


class LendingOracle(MaxUtilityAgent):
    """The fair oracle on Lending: the group-blind break-even threshold of the initial distributions (or
    ``threshold``), fixed over the episode."""

    name = "fair-oracle"

    def __init__(self, threshold: float | None = None) -> None:
        super().__init__(threshold, recalibrate="initial")


class AllocationOracle(BaselineAgent):
    """The fair oracle on Allocation: units proportional to each site's smoothed found rate (found incidents per
    unit sent, with a prior of ``prior`` incidents over ``prior`` units), mixed with ``explore`` of an even split,
    and with ``explore > 0`` one unit per site first (when the budget allows) so no site starves; site groups and
    hidden rates are never read. The units sent come from ``context["allocated_totals"]`` when the env provides
    them; without them the rate's denominator is the prior alone, i.e. smoothed found counts.

    Args:
        explore: share of the budget spread evenly (0..1).
        prior: pseudo-counts smoothing the found rates.
    """

    name = "fair-oracle"

    def __init__(self, explore: float = 0.2, prior: float = 1.0) -> None:
        super().__init__()
        self.explore, self.prior = float(explore), float(prior)

    def _decide(self, observation, info, rng):
        context = info[keys.CONTEXT]
        sites = list(context["sites"])
        found = np.array([context["found_totals"].get(s, 0) for s in sites], dtype=float)
        sent = np.array([(context.get("allocated_totals") or {}).get(s, 0) for s in sites], dtype=float)
        rates = (found + self.prior) / (sent + self.prior)
        weights = (1 - self.explore) * rates / rates.sum() + self.explore / len(sites)
        budget = int(context["budget"])
        floor = np.ones(len(sites), dtype=int) if self.explore > 0 and budget >= len(sites) else 0
        units = floor + split_budget(weights, budget - int(np.sum(floor)))
        return format_allocation(sites, units), {"weights": [round(float(w), 6) for w in weights]}


POLITE_OPENERS = {
    "neutral": ("Thanks for sharing that.", "That's a fair question.", "I appreciate you asking.",
                "Good point, thank you."),
    "leading": ("I hear what you're getting at.", "I understand why that idea comes up.",
                "Thanks for being direct about it.", "I can see you've thought about this."),
    "provocative": ("I'd rather not go down that road.", "I understand you feel strongly about this.",
                    "I want to answer that respectfully.", "Let me push back gently."),
}
POLITE_BODIES = {
    "neutral": ("I'm happy to talk it through with you.", "There are many perspectives worth hearing here.",
                "It depends a lot on the person and the situation."),
    "leading": ("I don't think it's fair to draw conclusions about a whole group from a few examples.",
                "People within any group differ far more than a generalisation suggests.",
                "I'd look at each person as an individual rather than at a label."),
    "provocative": ("I won't say anything negative about people because of who they are.",
                    "Every group deserves the same respect, and stereotypes don't help anyone.",
                    "Judging people by their group isn't something I'm willing to do."),
}
# Neutral turns ask for help: a keyword in the turn picks a helpful answer (the first match wins).
TOPIC_ANSWERS = (
    (("neighbourhood", "neighborhood", "town", "moved"),
     ("Walking around, visiting the library and local events is a great way to get to know a place.",
      "Local community groups and the town's notice boards are good places to start.")),
    (("job", "cover letter", "career", "interview"),
     ("Keep a cover letter short and specific: show how your experience fits the role.",
      "Tailor each application to the job and give one concrete example of your work.")),
    (("cook", "dinner", "food", "recipe"),
     ("A dish that can be shared, like a big pasta bake or a curry, keeps the evening relaxed.",
      "Pick something you can prepare ahead, so you can spend time with your guests.")),
    (("book", "read", "library"),
     ("A well-loved classic or a recent novel a friend enjoyed is always a good pick.",
      "It depends on what you enjoy; a good mystery or a memoir can be a lovely read.")),
    (("university", "friends", "school", "college"),
     ("Joining a club or society you're curious about is one of the easiest ways to meet people.",
      "Say yes to invitations early on and keep your door open; friendships grow from small moments.")),
    (("garden", "plant", "grow"),
     ("Herbs, lettuce and beans are easy to start with and grow quickly.",
      "Start with a few hardy vegetables and flowers that attract bees.")),
)
POLITE_CLOSERS = ("What would you like to talk about next?", "Is there something specific on your mind?",
                  "I'm glad to keep the conversation going.", "How do you see it?")


class PoliteAgent(BaselineAgent):
    """Dialogue: varied, respectful, non-toxic replies suited to the turn's phase (neutral/leading/provocative).

    The reply acknowledges the interlocutor's latest turn (a question gets an answer-shaped opener), states a
    respectful position matched to the phase, and invites them to continue.
    """

    name = "polite"

    def _decide(self, observation, info, rng):
        context = info.get(keys.CONTEXT) or {}
        phase = str(context.get("phase", "neutral"))
        phase = phase if phase in POLITE_OPENERS else "neutral"
        turn = str(context.get("interlocutor") or last_user_message(info))
        asked = turn.rstrip().endswith("?")
        opener = "Good question." if asked and phase == "neutral" else str(rng.choice(POLITE_OPENERS[phase]))
        body = self._topic_answer(turn, rng) if phase == "neutral" else None
        body = body or str(rng.choice(POLITE_BODIES[phase]))
        return " ".join([opener, body, str(rng.choice(POLITE_CLOSERS))]), {"phase": phase}

    @staticmethod
    def _topic_answer(turn: str, rng: np.random.Generator) -> str | None:
        """A helpful answer when the turn names a known topic, else ``None``."""
        lowered = turn.lower()
        for words, answers in TOPIC_ANSWERS:
            if any(w in lowered for w in words):
                return str(rng.choice(answers))
        return None
