"""Model diagnostics for the rank sweep: how far a fine-tune moved the model, and where the bias still lives.

- ``next_token_kl``: KL(P || Q) between two models' next-token distributions at the decision point of each prompt
  (base vs an arm, or full fine-tuning vs a LoRA arm).
- ``logit_lens``: the decision margin (logit of choice A's first token minus choice B's) read out at every layer
  through the final norm and the LM head.
- ``counterfactual_flip_rate``: the share of decisions that change when only the group descriptor is swapped.
- ``update_spectrum`` / ``lora_update`` / ``compare_updates``: singular values of the full fine-tuning update
  per weight matrix, the share of its energy a rank-r update could hold, and the LoRA arm's actual update beside it.

torch is imported here, and ``fairgym.analysis`` does not import this module eagerly; intervals over seeds live in
the torch-free ``fairgym.analysis.stats``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from fairgym.envs import keys
from fairgym.lm.scoring import prefix_cache, shared_prefix_length

DecideFn = Callable[[list[str], list[dict[str, Any]]], list[str]]


# ---- next-token distributions ----------------------------------------------------------------------------
def _device_of(model: Any) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def decision_logits(model: Any, tokenizer: Any, prompts: Sequence[str], batch_size: int = 8,
                    output_hidden_states: bool = False) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
    """Logits at the last token of each prompt (the decision point), batched with right padding.

    The token prefix shared by all prompts (system prompt, instructions) runs once per batch and its KV cache is
    reused by every row, and only the decision positions go through the LM head (``logits_to_keep``): decision
    prompts share most of their tokens, and a 49k-token head over every position would cost a fifth of the pass.

    Returns:
        ``(logits [prompts, vocab] float32, hidden)`` where ``hidden`` is, when asked for, one tensor
        ``[layers+1, prompts, hidden]`` per batch of the hidden states at the decision point.
    """
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    shared = shared_prefix_length(ids)
    out: list[torch.Tensor] = []
    hidden: list[torch.Tensor] | None = [] if output_hidden_states else None
    for start in range(0, len(ids), batch_size):
        logits, states = _decision_batch(model, ids[start:start + batch_size], shared, output_hidden_states,
                                         tokenizer.pad_token_id or 0)
        out.append(logits)
        if hidden is not None and states is not None:
            hidden.append(states)
    return (torch.cat(out) if out else torch.zeros(0, 0)), hidden


def _decision_batch(model: Any, ids: list[list[int]], shared: int, output_hidden_states: bool,
                    pad_id: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    device = _device_of(model)
    cache = prefix_cache(model, ids[0][:shared], len(ids), device) if shared else None  # the prefix runs once
    suffixes = [i[shared:] for i in ids]
    width = max(len(s) for s in suffixes)
    input_ids = torch.tensor([s + [pad_id] * (width - len(s)) for s in suffixes], device=device)
    mask = torch.tensor([[1] * (shared + len(s)) + [0] * (width - len(s)) for s in suffixes], device=device)
    positions = torch.arange(shared, shared + width, device=device).expand(len(ids), -1)
    last = torch.tensor([len(s) - 1 for s in suffixes], device=device)
    keep = torch.unique(last)  # sorted; column j of the kept logits is suffix position keep[j]
    result = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, cache=cache,
                   use_cache=cache is not None, output_hidden_states=output_hidden_states, logits_to_keep=keep)
    rows = torch.arange(len(ids), device=device)
    logits = result.logits[rows, torch.searchsorted(keep, last)].float().cpu()
    states = torch.stack([h[rows, last] for h in result.hidden_states]) if output_hidden_states else None
    return logits, states


def kl_from_logits(logits_p: torch.Tensor, logits_q: torch.Tensor) -> dict[str, Any]:
    """KL(P || Q) per row of two ``[prompts, vocab]`` logit tensors, in nats (see ``next_token_kl``)."""
    if len(logits_p) == 0:
        return {"mean": float("nan"), "per_prompt": [], "n": 0}
    logp, logq = torch.log_softmax(logits_p, dim=-1), torch.log_softmax(logits_q, dim=-1)
    per_prompt = (logp.exp() * (logp - logq)).sum(dim=-1).clamp_min(0.0)
    return {"mean": float(per_prompt.mean()), "per_prompt": per_prompt.tolist(), "n": len(per_prompt)}


def next_token_kl(model_p: Any, model_q: Any, tokenizer: Any, prompts: Sequence[str],
                  batch_size: int = 8) -> dict[str, Any]:
    """KL(P || Q) of the next-token distributions of ``model_p`` and ``model_q`` at each prompt's last token.

    Args:
        model_p: the reference model (e.g. the base, or the full fine-tune).
        model_q: the compared model (e.g. a LoRA arm).
        tokenizer: a tokenizer shared by both models.
        prompts: rendered prompt texts ending where the decision is made.
        batch_size: prompts per forward pass.

    Returns:
        ``{"mean": float, "per_prompt": list[float], "n": int}`` in nats; ``mean`` is ``nan`` with no prompts.
    """
    if not prompts:
        return kl_from_logits(torch.zeros(0, 1), torch.zeros(0, 1))
    return kl_from_logits(decision_logits(model_p, tokenizer, prompts, batch_size)[0],
                          decision_logits(model_q, tokenizer, prompts, batch_size)[0])


# ---- logit lens ------------------------------------------------------------------------------------------
def first_token_id(tokenizer: Any, text: str) -> int:
    """The id of the first token of ``text`` as the model would write it at the start of its reply."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError(f"choice {text!r} tokenizes to nothing; pass non-empty choices.")
    return int(ids[0])


def _final_norm(model: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    inner = model.get_decoder() if hasattr(model, "get_decoder") else getattr(model, "model", None)
    norm = getattr(inner, "norm", None)
    if norm is None:
        raise TypeError(f"{type(model).__name__} has no final norm at model.get_decoder().norm; "
                        "logit_lens supports Llama-style decoders (Llama, Qwen2, Mistral, SmolLM).")
    return norm


@torch.no_grad()
def logit_lens(model: Any, tokenizer: Any, prompts: Sequence[str],
               choices: Sequence[str] = ("approve", "deny"), batch_size: int = 8) -> np.ndarray:
    """The decision margin (logit of ``choices[0]``'s first token minus ``choices[1]``'s) at every layer.

    Each intermediate hidden state at the decision point is read out through the final norm and the LM head;
    the last row is the model's own output logits (its last hidden state is already normalised).

    Returns:
        ``float64 [layers+1, prompts]``; row 0 reads the embeddings, the last row equals the final logits' margin.
    """
    if len(choices) != 2:
        raise ValueError(f"logit_lens needs exactly two choices (A, B), got {list(choices)!r}.")
    a, b = (first_token_id(tokenizer, c) for c in choices)
    if a == b:
        raise ValueError(f"choices {list(choices)!r} share their first token; the margin would always be 0.")
    logits, hidden = decision_logits(model, tokenizer, prompts, batch_size, output_hidden_states=True)
    if not prompts:
        return np.zeros((0, 0))
    norm, head = _final_norm(model), model.get_output_embeddings()
    states = torch.cat(hidden or [], dim=1)  # [layers+1, prompts, hidden]
    inner = head(norm(states[:-1])).float()
    margins = torch.cat([inner[..., a] - inner[..., b], (logits[:, a] - logits[:, b])[None].to(inner.device)])
    return margins.cpu().double().numpy()


# ---- counterfactual flips --------------------------------------------------------------------------------
def _swap_info(info: dict[str, Any], source: str, target: str) -> dict[str, Any]:
    from fairgym.envs.groups import swap_group

    out = dict(info)
    out[keys.GROUP] = target
    if info.get(keys.MESSAGES):
        out[keys.MESSAGES] = [{**m, "content": swap_group(m["content"], source, target)} for m in info[keys.MESSAGES]]
    return out


def _decide(agent_or_fn: Any, observations: list[str], infos: list[dict[str, Any]]) -> list[str]:
    if hasattr(agent_or_fn, "act"):
        return list(agent_or_fn.act(observations, infos))
    if callable(agent_or_fn):
        return list(agent_or_fn(observations, infos))
    raise TypeError(f"expected an agent with .act or a callable (observations, infos) -> texts, got {agent_or_fn!r}")


def counterfactual_flip_rate(agent_or_decide_fn: Any, observations: Sequence[str],
                             infos: Sequence[dict[str, Any]], groups: Iterable[str]) -> dict[str, Any]:
    """The share of decisions that change when only the group descriptor is swapped (``swap_group``).

    Each observation whose ``info["group"]`` is one of ``groups`` is decided as is and once per other group with
    the descriptor (and any chat messages) swapped; decisions are compared after ``strip().lower()``.

    Args:
        agent_or_decide_fn: an agent (``.act(observations, infos)``) or a callable with the same signature.
        observations: decision observations (e.g. the ``observation`` of recorded steps).
        infos: the matching infos (at least ``group``; ``choices`` and ``messages`` when present).
        groups: the descriptors to swap between.

    Returns:
        ``{"overall": rate, "pairs": {"A->B": rate}, "n": {"A->B": count}}``; a pair with no decisions is ``nan``.
    """
    from fairgym.envs.groups import swap_group

    groups = list(groups)
    if len(observations) != len(infos):
        raise ValueError(f"observations ({len(observations)}) and infos ({len(infos)}) must have the same length.")
    pairs = [(s, t) for s in groups for t in groups if s != t]
    base_idx = [i for i, info in enumerate(infos) if info.get(keys.GROUP) in groups]
    original = _decide(agent_or_decide_fn, [observations[i] for i in base_idx], [infos[i] for i in base_idx])
    original_by_idx = dict(zip(base_idx, (d.strip().lower() for d in original), strict=True))
    rates, counts, flips_total, n_total = {}, {}, 0, 0
    for source, target in pairs:
        idx = [i for i in base_idx if infos[i][keys.GROUP] == source]
        swapped = _decide(agent_or_decide_fn, [swap_group(observations[i], source, target) for i in idx],
                          [_swap_info(infos[i], source, target) for i in idx]) if idx else []
        flips = sum(original_by_idx[i] != d.strip().lower() for i, d in zip(idx, swapped, strict=True))
        rates[f"{source}->{target}"] = flips / len(idx) if idx else float("nan")
        counts[f"{source}->{target}"] = len(idx)
        flips_total, n_total = flips_total + flips, n_total + len(idx)
    overall = flips_total / n_total if n_total else float("nan")
    return {"overall": overall, "pairs": rates, "n": counts}


# ---- update spectrum -------------------------------------------------------------------------------------
def state_deltas(base_state: Mapping[str, torch.Tensor], tuned_state: Mapping[str, torch.Tensor],
                 include: Callable[[str], bool] | None = None) -> dict[str, torch.Tensor]:
    """ΔW = tuned - base for every 2-D weight present in both (default: inside the decoder layers)."""
    include = include or (lambda name: ".layers." in f".{name}" and name.endswith(".weight"))
    out = {}
    for name, base in base_state.items():
        tuned = tuned_state.get(name)
        if tuned is not None and base.ndim == 2 and include(name) and tuned.shape == base.shape:
            out[name] = tuned.detach().float().cpu() - base.detach().float().cpu()
    return out


def energy_shares(singular_values: torch.Tensor, ranks: Iterable[int]) -> dict[int, float]:
    """Share of ``sum(s**2)`` within the top ``r`` singular values, per ``r`` (``nan`` for a zero update)."""
    energy = singular_values.double() ** 2
    total = float(energy.sum())
    cumulative = torch.cumsum(energy, dim=0)
    out = {}
    for r in ranks:
        if r < 0:
            raise ValueError(f"ranks must be >= 0, got {r}.")
        held = float(cumulative[min(r, len(cumulative)) - 1]) if r > 0 else 0.0
        out[int(r)] = held / total if total > 0 else float("nan")
    return out


def _spectrum_summary(deltas: Mapping[str, torch.Tensor], ranks: Sequence[int], keep: int) -> dict[str, Any]:
    matrices, held, total = {}, dict.fromkeys(ranks, 0.0), 0.0
    for name, delta in deltas.items():
        s = torch.linalg.svdvals(delta.double())
        shares = energy_shares(s, ranks)
        energy = float((s**2).sum())
        matrices[name] = {"singular_values": s[:keep].tolist(), "energy": energy, "share": shares,
                          "norm": math.sqrt(energy)}
        total += energy
        for r in ranks:
            held[r] += 0.0 if math.isnan(shares[r]) else shares[r] * energy
    overall = {r: held[r] / total if total > 0 else float("nan") for r in ranks}
    per_matrix = [m["share"] for m in matrices.values()]
    mean = {r: float(np.nanmean([s[r] for s in per_matrix])) if per_matrix else float("nan") for r in ranks}
    return {"ranks": list(ranks), "energy_share": overall, "mean_matrix_share": mean, "matrices": matrices}


def update_spectrum(base_state: Mapping[str, torch.Tensor], tuned_state: Mapping[str, torch.Tensor],
                    ranks: Sequence[int], keep: int = 64) -> dict[str, Any]:
    """Singular values of the full fine-tuning update ΔW per weight matrix, and its energy within the top r.

    Args:
        base_state: the base model's ``state_dict()``.
        tuned_state: the fully fine-tuned model's ``state_dict()`` (same keys).
        ranks: the ranks r at which to report the energy share.
        keep: how many leading singular values to keep per matrix in the result.

    Returns:
        ``{"ranks", "energy_share": {r: share over all matrices, energy-weighted}, "mean_matrix_share": {r: ...},
        "matrices": {name: {"singular_values", "energy", "share": {r: ...}, "norm"}}}``.
    """
    return delta_spectrum(state_deltas(base_state, tuned_state), ranks, keep)


def delta_spectrum(deltas: Mapping[str, torch.Tensor], ranks: Sequence[int], keep: int = 64) -> dict[str, Any]:
    """``update_spectrum`` of updates already computed (``state_deltas``), so callers holding them skip a pass."""
    ranks = sorted({int(r) for r in ranks})
    if not ranks:
        raise ValueError("update_spectrum needs at least one rank, e.g. ranks=[1, 8].")
    return _spectrum_summary(deltas, ranks, keep)


def _peft_to_state_name(module_name: str) -> str:
    name = module_name.removeprefix("base_model.model.")
    return f"{name}.weight"


@torch.no_grad()
def lora_update(base_model: Any, peft_model: Any, ranks: Sequence[int] | None = None,
                keep: int = 64) -> dict[str, Any]:
    """The LoRA arm's actual update ΔW = B @ A * scaling per adapted matrix, with its spectrum.

    ``base_model`` is accepted for symmetry with ``update_spectrum`` and to check the names; the update is read
    from the PEFT layers (``get_delta_weight``), so nothing is merged.

    Returns:
        ``{"deltas": {state name: ΔW}, **spectrum summary at ``ranks`` (default: the adapter rank)}``.
    """
    deltas = {}
    for name, module in peft_model.named_modules():
        if hasattr(module, "get_delta_weight") and getattr(module, "active_adapters", None):
            adapter = module.active_adapters[0]
            if adapter in getattr(module, "lora_A", {}):
                deltas[_peft_to_state_name(name)] = module.get_delta_weight(adapter).detach().float().cpu()
    base_names = set(base_model.state_dict()) if base_model is not None else set(deltas)
    deltas = {n: d for n, d in deltas.items() if n in base_names}
    if not deltas:
        raise ValueError("lora_update found no LoRA layers in peft_model whose weights the base model has.")
    ranks = sorted(set(ranks or [])) or [max(int(torch.linalg.matrix_rank(d)) for d in deltas.values())]
    return {"deltas": deltas, **_spectrum_summary(deltas, ranks, keep)}


def compare_updates(full_deltas: Mapping[str, torch.Tensor], arm_deltas: Mapping[str, torch.Tensor],
                    rank: int) -> dict[str, Any]:
    """How much of the full update an arm's actual update holds, beside what rank ``rank`` could hold at best.

    Per shared matrix: ``subspace_share`` = ‖U Uᵀ ΔW_full V Vᵀ‖² / ‖ΔW_full‖² with U, V the top-``rank``
    singular vectors of the arm's ΔW (at most the optimal ``top_r_share`` by Eckart–Young), ``cosine`` between
    the two updates, and ``norm_ratio`` = ‖ΔW_arm‖ / ‖ΔW_full‖. Overall values are full-energy weighted.
    """
    names = [n for n in arm_deltas if n in full_deltas]
    rows, weights = {}, []
    with torch.random.fork_rng():  # the randomized range finder must not move the caller's RNG
        torch.manual_seed(0)
        for name in names:
            rows[name], energy = _compare_matrix(full_deltas[name].double(), arm_deltas[name].double(), rank)
            weights.append(energy)
    overall = {key: _weighted([rows[n][key] for n in names], weights) for key in
               ("subspace_share", "top_r_share", "cosine", "norm_ratio")}
    return {"rank": rank, **overall, "matrices": rows}


def _compare_matrix(full: torch.Tensor, arm: torch.Tensor, rank: int) -> tuple[dict[str, float], float]:
    """One matrix of ``compare_updates``; returns (row, the full update's energy).

    The arm's top-``rank`` singular vectors come from a randomized range finder with ``rank + 4`` columns: exact
    for a LoRA update (its rank is at most ``rank``) and ~15x cheaper than a dense SVD of a 576x1536 matrix.
    """
    q = min(rank + 4, *arm.shape)
    u, _, v = torch.svd_lowrank(arm, q=q, niter=2)
    u, vh = u[:, :rank], v[:, :rank].T
    projected = u @ (u.T @ full @ vh.T) @ vh
    full_energy = float((full**2).sum())
    top = energy_shares(torch.linalg.svdvals(full), [rank])[rank]
    denom = math.sqrt(full_energy * float((arm**2).sum()))
    nan = float("nan")
    return {"subspace_share": float((projected**2).sum()) / full_energy if full_energy else nan,
            "top_r_share": top, "cosine": float((full * arm).sum()) / denom if denom else nan,
            "norm_ratio": math.sqrt(float((arm**2).sum()) / full_energy) if full_energy else nan}, full_energy


def _weighted(values: Sequence[float], weights: Sequence[float]) -> float:
    pairs = [(v, w) for v, w in zip(values, weights, strict=True) if not math.isnan(v) and w > 0]
    total = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / total if total else float("nan")


# ---- intruder dimensions (PEFT) ---------------------------------------------------------------------------
INTRUDER_PROBE = "fairgym_intruder_probe"


def intruder_dimensions(peft_model: Any, top_k: int = 10, threshold_epsilon: float = 0.5) -> dict[str, Any]:
    """Intruder dimensions of a LoRA model's update, counted by PEFT's own ``reduce_intruder_dimension``.

    After Shuttleworth et al. 2024 ("LoRA vs full fine-tuning: an illusion of equivalence"): a leading singular
    direction of the merged weight W + ΔW is an intruder when its largest |cosine| with every singular vector of
    the base W is below ``threshold_epsilon``; PEFT checks the ``top_k`` leading directions of every LoRA layer.
    PEFT's function mitigates them into a new adapter and logs the count per layer; the count is read from that
    log, and the probe adapter is deleted again, leaving the model's active adapter as it was.

    Returns:
        ``{"total": intruders over all layers, "layers": layers checked, "layers_with_intruders": int,
        "per_layer": {layer name: count}, "top_k", "threshold_epsilon"}``.
    """
    from peft.tuners.lora.intruders import reduce_intruder_dimension

    active = peft_model.active_adapter
    lines: list[str] = []
    with torch.no_grad():
        reduce_intruder_dimension(peft_model, old_adapter_name=active, new_adapter_name=INTRUDER_PROBE,
                                  top_k=top_k, threshold_epsilon=threshold_epsilon, logging_sink=lines.append)
    peft_model.set_adapter(active)
    peft_model.delete_adapter(INTRUDER_PROBE)
    per_layer = {}
    for line in lines:  # PEFT logs "<layer>: No intruders" or "<layer>: Intruders: <n>"
        found = re.fullmatch(r"(.+): (?:No intruders|Intruders: (\d+))", str(line))
        if found:
            per_layer[found.group(1)] = int(found.group(2) or 0)
    return {"total": sum(per_layer.values()), "layers": len(per_layer),
            "layers_with_intruders": sum(1 for n in per_layer.values() if n), "per_layer": per_layer,
            "top_k": top_k, "threshold_epsilon": threshold_epsilon}

