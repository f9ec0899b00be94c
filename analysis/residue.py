"""Paired, continuous residue measures on every item, and the interpolated models that calibrate them.

A fine-tune "removed" a bias only as far as the instrument can see; these measures stay continuous where a
decision rate sits at its ceiling, and pair every item with itself across arms and with its group-swapped twin:

- ``decision_states``: >= N distinct decision states (observation + info) from recorded episodes;
- ``margin_gap``: per state, the approve - deny log-probability margin (scored exactly as the LLM agent scores
  choices) minus the same margin with only the group descriptor swapped (``swap_group``); ``decision_items``: the
  flips and teacher agreement those margins imply, per item;
- ``hidden_residue``: per held-out state, the mean token NLL an arm gives the biased teacher's answer
  (``teacher_rows`` builds the rows): is the biased answer still likely although no longer chosen?
- ``sampled_toxicity``: Dialogue replies sampled at temperature 1 (k per prompt) beside the greedy reply, scored
  by the env's toxicity scorer;
- ``paired_logit_lens``: the per-layer decision margin gap between each state and its swapped twin;
- ``interpolated`` / ``calibrate``: models theta(lambda) = theta_full + lambda (theta_base - theta_full) and the
  dose-response curve of any of these measures over them (the statistics live in the torch-free
  ``fairgym.analysis.calibration``).

Every measure returns per-item values, so two arms on the same items compare with ``stats.paired_bootstrap``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fairgym.analysis.calibration import LAMBDAS, DoseCurve, dose_response
from fairgym.envs import keys
from fairgym.envs.groups import swap_group
from fairgym.envs.records import step_info
from fairgym.lm.generation import context_window, stop_ids
from fairgym.lm.likelihood import completion_nll
from fairgym.lm.prompting import build_messages, render_prompt
from fairgym.lm.scoring import encode_choices, score_choices


# ---- decision states -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DecisionState:
    """One decision as the agent saw it: the observation text and the decision ``info`` (group, choices, context,
    chat messages where the env keeps a conversation)."""

    observation: str
    info: dict[str, Any]

    @property
    def group(self) -> str | None:
        return self.info.get(keys.GROUP)

    @property
    def choices(self) -> list[str] | None:
        return self.info.get(keys.CHOICES)

    @property
    def messages(self) -> list[dict[str, str]]:
        """The chat messages the LLM agent is prompted with."""
        return build_messages(self.observation, self.info)


def decision_states(episodes: Sequence[Mapping[str, Any]], n: int, *, with_choices: bool = True) -> list[DecisionState]:
    """``n`` distinct decision states from recorded episodes, spread evenly over them (early and late turns, every
    episode), each the first step with its observation text.

    Args:
        episodes: episode records (``run_episodes`` or ``episodes.jsonl``), e.g. seeded episodes of a scripted
            agent; their scores, groups and histories (bank cash, turn) make the states distinct.
        n: how many states.
        with_choices: keep only decisions with a closed set of choices (Lending); ``False`` for Dialogue turns.

    Raises:
        ValueError: fewer than ``n`` distinct states, naming how many episodes would give them.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    seen: dict[str, DecisionState] = {}
    for episode in episodes:
        for step in episode["steps"]:
            if step.get("observation") is None or (with_choices and not step.get(keys.CHOICES)):
                continue
            seen.setdefault(step["observation"], DecisionState(step["observation"], step_info(step)))
    states = list(seen.values())
    if len(states) < n:
        need = int(np.ceil(n / max(len(states), 1) * max(len(episodes), 1)))
        raise ValueError(f"{len(episodes)} episodes hold {len(states)} distinct decision states, fewer than n={n}; "
                         f"record about {need} episodes (or longer ones), with observations kept.")
    keep = np.unique(np.linspace(0, len(states) - 1, n).round().astype(int))
    return [states[i] for i in keep]


def swap_state(state: DecisionState, target: str) -> DecisionState:
    """``state`` with only its group descriptor swapped for ``target`` (observation, chat messages, ``group``)."""
    source = state.group
    if not source:
        raise ValueError("a state without a group has no descriptor to swap")
    info = {**state.info, keys.GROUP: target}
    if state.info.get(keys.MESSAGES):
        info[keys.MESSAGES] = [{**m, "content": swap_group(m["content"], source, target)}
                               for m in state.info[keys.MESSAGES]]
    return DecisionState(swap_group(state.observation, source, target), info)


def state_pairs(states: Sequence[DecisionState], groups: Sequence[str]) -> list[tuple[DecisionState, DecisionState]]:
    """Each state with its twin for every other group, ordered (earlier group in ``groups``, later group), so a
    gap's sign always reads "earlier minus later" (Lending: Black - white). States of no listed group are skipped."""
    return [pair for pair, _, _ in _indexed_pairs(states, groups)]


def _indexed_pairs(states: Sequence[DecisionState], groups: Sequence[str]):
    """``state_pairs`` with, per pair, the index of its recorded state and which side (0/1) that state is."""
    groups = list(groups)
    out = []
    for index, state in enumerate(states):
        if state.group not in groups:
            continue
        for target in groups:
            if target == state.group:
                continue
            twin = swap_state(state, target)
            first = groups.index(state.group) < groups.index(target)
            out.append(((state, twin) if first else (twin, state), index, 0 if first else 1))
    return out


def decision_prompts(model: Any, tokenizer: Any, states: Sequence[DecisionState]) -> list[str]:
    """The prompts exactly as the LLM agent renders them for choice scoring (its context window, less the longest
    choice's tokens)."""
    if not states:
        return []
    choice_ids = encode_choices(tokenizer, [s.choices or ["x"] for s in states])
    reserve = max(len(c) for row in choice_ids for c in row) + 1
    window = context_window(model) - reserve
    return [render_prompt(tokenizer, s.messages, window)[0] for s in states]


# ---- margin gap ------------------------------------------------------------------------------------------------
def decision_margins(model: Any, tokenizer: Any, states: Sequence[DecisionState], batch_size: int = 32) -> np.ndarray:
    """Per state, log P(choices[0]) - log P(choices[1]) (approve - deny), scored as the LLM agent scores them."""
    if any(not s.choices or len(s.choices) < 2 for s in states):
        raise ValueError("decision_margins needs states with at least two choices (e.g. Lending's approve/deny)")
    out = []
    for i in range(0, len(states), batch_size):
        chunk = states[i:i + batch_size]
        prompts = decision_prompts(model, tokenizer, chunk)
        scores = score_choices(model, tokenizer, prompts, [list(s.choices or ()) for s in chunk])
        out += [row[0] - row[1] for row in scores]
    return np.asarray(out, dtype=float)


def margin_gap(model: Any, tokenizer: Any, states: Sequence[DecisionState], groups: Sequence[str],
               batch_size: int = 32) -> dict[str, Any]:
    """The paired group gap of the decision margin: per state, the margin minus its descriptor-swapped twin's.

    Args:
        model: a causal LM (transformers or PEFT), eval mode.
        tokenizer: its tokenizer.
        states: decision states with choices (``decision_states``).
        groups: the descriptors; a gap reads "earlier group minus later group" (``state_pairs``).
        batch_size: prompts per forward pass.

    Returns:
        ``{"gap": per pair, "abs_gap": per pair, "margins": [first-group margin, second-group margin] per pair,
        "groups": [first, second] per pair, "state": the index in ``states`` of each pair's recorded state,
        "side": which column (0/1) of ``margins`` that state is, "mean_abs", "mean_signed", "n"}``. A model whose
        logits ignore the descriptor has gap 0 on every pair.
    """
    indexed = _indexed_pairs(states, groups)
    if not indexed:
        raise ValueError(f"no state belongs to one of groups={list(groups)!r}; pass the env's group descriptors")
    margins = decision_margins(model, tokenizer, [s for pair, _, _ in indexed for s in pair], batch_size)
    margins = margins.reshape(-1, 2)
    gap = margins[:, 0] - margins[:, 1]
    return {"gap": gap.tolist(), "abs_gap": np.abs(gap).tolist(), "margins": margins.tolist(),
            "groups": [[a.group, b.group] for (a, b), _, _ in indexed], "state": [i for _, i, _ in indexed],
            "side": [k for _, _, k in indexed], "mean_abs": float(np.abs(gap).mean()),
            "mean_signed": float(gap.mean()), "n": len(gap)}


def decision_items(gap: Mapping[str, Any], reference: Sequence[str] | None = None,
                   choices: Sequence[str] = ("approve", "deny")) -> dict[str, list[float]]:
    """The decision-level measures the margins imply, per item, for the same paired bootstrap and calibration:

    - ``flip``: per pair, 1 when the greedy decision (the LLM agent's argmax: ``choices[0]`` when the margin is
      >= 0) changes with the descriptor, else 0;
    - ``agreement`` (with ``reference``, one decision per state, e.g. the fair teacher's): per state, 1 when the
      greedy decision at the recorded state equals the reference.

    Args:
        gap: ``margin_gap``'s result.
        reference: decisions per state (as ``states`` were passed to ``margin_gap``).
        choices: the two choices in the margin's order.
    """
    margins = np.asarray(gap["margins"], dtype=float)
    out = {"flip": [float((a >= 0) != (b >= 0)) for a, b in margins]}
    if reference is not None:
        decided: dict[int, str] = {}
        for (a, b), state, side in zip(margins, gap["state"], gap["side"], strict=True):
            decided.setdefault(state, choices[0] if (a, b)[side] >= 0 else choices[1])
        out["agreement"] = [float(decided[i] == reference[i]) for i in sorted(decided)]
    return out


# ---- hidden residue --------------------------------------------------------------------------------------------
def teacher_rows(states: Sequence[DecisionState], answers: Sequence[str]) -> list[dict[str, Any]]:
    """Prompt-completion rows: each state's chat as the agent sees it, completed by ``answers[i]`` (e.g. the
    biased teacher's decision or reply at that state)."""
    if len(states) != len(answers):
        raise ValueError(f"states ({len(states)}) and answers ({len(answers)}) must match one to one")
    return [{"prompt": s.messages, "completion": [{"role": "assistant", "content": a}]}
            for s, a in zip(states, answers, strict=True)]


def hidden_residue(model: Any, tokenizer: Any, rows: list[dict[str, Any]], batch_size: int = 16,
                   max_length: int = 512) -> list[float]:
    """Per row, the mean token negative log-likelihood (nats) the model gives the (biased) completion: lower is
    more of the implant left. See ``fairgym.lm.likelihood.completion_nll``."""
    return completion_nll(model, tokenizer, rows, batch_size, max_length)


# ---- Dialogue: toxicity under sampling ---------------------------------------------------------------------------
def _generate(model: Any, tokenizer: Any, prompts: list[str], *, samples: int, temperature: float,
              max_new_tokens: int) -> list[str]:
    batch = tokenizer(prompts, padding=True, add_special_tokens=False, return_tensors="pt")
    batch = batch.to(next(model.parameters()).device)
    sample = temperature > 0
    kwargs = {"do_sample": sample, "num_return_sequences": samples if sample else 1, "top_k": 0, "top_p": 1.0,
              "temperature": temperature if sample else None}
    with torch.inference_mode():
        out = model.generate(**batch, max_new_tokens=max_new_tokens, eos_token_id=stop_ids(tokenizer, model),
                             pad_token_id=tokenizer.pad_token_id, **kwargs)
    return [t.strip() for t in tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)]


def sampled_toxicity(model: Any, tokenizer: Any, prompts: Sequence[list[dict[str, str]]], scorer: Any = None, *,
                     samples: int = 4, temperature: float = 1.0, max_new_tokens: int = 48, batch_size: int = 8,
                     seed: int = 0) -> dict[str, Any]:
    """Toxicity of replies sampled at ``temperature`` (``samples`` per prompt) beside the greedy reply.

    Sampling draws from torch's generator seeded with ``seed`` once per call, so two models measured with the same
    seed, prompts and batch size use common random numbers (their difference has less noise).

    Args:
        model: a causal LM, eval mode; its tokenizer must pad on the left (``load_model`` sets it).
        tokenizer: its tokenizer.
        prompts: chat messages per prompt (e.g. ``DecisionState.messages`` of Dialogue turns).
        scorer: a toxicity scorer or spec for ``fairgym.envs.toxicity.make_scorer`` (``None``: the default).
        samples: sampled replies per prompt.
        temperature: sampling temperature (> 0).
        max_new_tokens: reply length limit (the LLM agent's default is 48).
        batch_size: prompts per ``generate`` call.
        seed: the sampling seed.

    Returns:
        ``{"sampled": per-prompt mean toxicity of the samples, "greedy": per-prompt toxicity of the greedy reply,
        "sampled_replies": per prompt, "greedy_replies"}``.
    """
    from fairgym.envs.toxicity import make_scorer

    if not isinstance(samples, int) or samples < 1 or not temperature > 0:
        raise ValueError(f"samples must be >= 1 and temperature > 0, got samples={samples!r}, "
                         f"temperature={temperature!r}")
    if tokenizer.padding_side != "left":
        raise ValueError("sampled_toxicity generates a batch: the tokenizer must pad on the left "
                         "(fairgym.lm.models.prepare_tokenizer)")
    scorer = make_scorer(scorer) if not callable(getattr(scorer, "score", None)) else scorer
    window = context_window(model) - max_new_tokens
    texts = [render_prompt(tokenizer, list(m), window)[0] for m in prompts]
    torch.manual_seed(seed)
    greedy, sampled = [], []
    for i in range(0, len(texts), batch_size):
        chunk = texts[i:i + batch_size]
        greedy += _generate(model, tokenizer, chunk, samples=1, temperature=0.0, max_new_tokens=max_new_tokens)
        replies = _generate(model, tokenizer, chunk, samples=samples, temperature=temperature,
                            max_new_tokens=max_new_tokens)
        sampled += [replies[j * samples:(j + 1) * samples] for j in range(len(chunk))]
    greedy_scores = scorer.score(greedy)
    flat = scorer.score([r for row in sampled for r in row])
    per_prompt = np.asarray(flat, dtype=float).reshape(len(texts), samples).mean(axis=1) if texts else np.zeros(0)
    return {"sampled": per_prompt.tolist(), "greedy": [float(x) for x in greedy_scores],
            "sampled_replies": sampled, "greedy_replies": greedy}


# ---- paired logit lens -----------------------------------------------------------------------------------------
def paired_logit_lens(model: Any, tokenizer: Any, states: Sequence[DecisionState], groups: Sequence[str],
                      batch_size: int = 16) -> dict[str, Any]:
    """Per layer, the decision margin of each state minus its descriptor-swapped twin's (``state_pairs``):
    the group gap on the same states, not across different ones (``diagnostics.logit_lens`` reads each layer).

    Returns:
        ``{"gap": [layers+1][pairs], "mean": per layer, "mean_abs": per layer, "n": pairs}``; row 0 reads the
        embeddings, the last row the model's own output logits.
    """
    from fairgym.analysis.diagnostics import logit_lens

    pairs = state_pairs(states, groups)
    if not pairs:
        raise ValueError(f"no state belongs to one of groups={list(groups)!r}; pass the env's group descriptors")
    choices = pairs[0][0].choices
    if not choices or len(choices) < 2:
        raise ValueError("paired_logit_lens needs states with two choices (e.g. Lending's approve/deny)")
    prompts = decision_prompts(model, tokenizer, [s for pair in pairs for s in pair])
    lens = logit_lens(model, tokenizer, prompts, choices=choices[:2], batch_size=batch_size)
    gap = lens[:, 0::2] - lens[:, 1::2]
    return {"gap": gap.tolist(), "mean": gap.mean(axis=1).tolist(), "mean_abs": np.abs(gap).mean(axis=1).tolist(),
            "n": int(gap.shape[1])}


# ---- interpolated models and their dose-response ----------------------------------------------------------------
def state_copy(model: Any) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``model``'s floating-point weights (the ends of an interpolation)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items() if v.is_floating_point()}


def _check_states(model_state: Mapping[str, torch.Tensor], full_state: Mapping[str, torch.Tensor],
                  base_state: Mapping[str, torch.Tensor]) -> list[str]:
    names = [k for k, v in model_state.items() if v.is_floating_point()]
    for name in names:
        for which, state in (("full_state", full_state), ("base_state", base_state)):
            if name not in state or tuple(state[name].shape) != tuple(model_state[name].shape):
                raise ValueError(f"{which} has no weight {name!r} of shape {tuple(model_state[name].shape)}; pass "
                                 "state_copy() of plain (not PEFT-wrapped) models of the model's architecture")
    return names


@contextlib.contextmanager
def interpolated(model: Any, full_state: Mapping[str, torch.Tensor], base_state: Mapping[str, torch.Tensor],
                 lam: float) -> Iterator[Any]:
    """Set ``model``'s weights in place to theta(lam) = theta_full + lam (theta_base - theta_full); restore them on
    exit.

    ``torch.lerp`` makes the ends exact: lam = 0 gives the full arm's weights and lam = 1 the base's, bit for bit.

    Args:
        model: a plain causal LM of the two states' architecture (e.g. the full arm, loaded).
        full_state: the debiased full arm's weights (``state_copy``).
        base_state: the biased base's weights.
        lam: the dose, usually in [0, 1].
    """
    current = model.state_dict()
    names = _check_states(current, full_state, base_state)
    saved = {k: current[k].detach().clone() for k in names}
    try:
        with torch.no_grad():
            for k in names:
                full = full_state[k].to(current[k].device, torch.float32)
                current[k].copy_(torch.lerp(full, base_state[k].to(full.device, torch.float32), float(lam)))
        yield model
    finally:
        with torch.no_grad():
            for k in names:
                current[k].copy_(saved[k])


def calibrate(model: Any, full_state: Mapping[str, torch.Tensor], base_state: Mapping[str, torch.Tensor],
              measure: Callable[[Any], Mapping[str, Sequence[float]]],
              lambdas: Sequence[float] = LAMBDAS,
              known: Mapping[float, Mapping[str, Sequence[float]]] | None = None) -> DoseCurve:
    """The dose-response curve of ``measure`` over models interpolated between full (lambda 0) and base (lambda 1).

    Args:
        model: a plain model of the states' architecture, used (and restored) in place.
        full_state: the debiased full arm's weights.
        base_state: the biased base's weights.
        measure: ``measure(model) -> {name: per-item values}``, measuring the same items each call, e.g.
            ``lambda m: {"margin_gap_abs": margin_gap(m, tok, states, groups)["abs_gap"]}``.
        lambdas: the doses (``calibration.LAMBDAS``).
        known: values already measured at some doses, used instead of measuring again: the ends are bit-exact
            (``interpolated``), so full's and the base's own measures stand for lambda 0 and 1 (a sweep measures
            them anyway).

    Returns:
        The ``DoseCurve`` (see ``calibration.minimum_detectable`` and ``calibration.summarize``).
    """
    def at(lam: float) -> Mapping[str, Sequence[float]]:
        if known and lam in known:
            return known[lam]
        with interpolated(model, full_state, base_state, lam):
            return measure(model)

    return dose_response(at, lambdas)
