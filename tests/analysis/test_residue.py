"""Residue measures on a tiny model: the margin gap is paired and sees the descriptor only, the interpolation's ends
are the two models exactly, the hidden residue is a per-row forward pass, the paired lens agrees with the gap."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fairgym.analysis import residue as R
from fairgym.analysis.stats import paired_bootstrap

GROUPS = ["Black", "white"]


@pytest.fixture(scope="module")
def states():
    from fairgym.agents import make_agent
    from fairgym.agents.runner import run_episodes

    episodes = run_episodes("fairgym/Lending-v0", make_agent("random"), episodes=2, seed=7,
                            env_kwargs={"max_steps": 6, "score_labels": True}, progress=False)
    return R.decision_states(episodes, 8)


def test_decision_states_are_distinct_spread_and_refuse_too_few(states):
    from fairgym.agents import make_agent
    from fairgym.agents.runner import run_episodes

    assert len(states) == 8 and len({s.observation for s in states}) == 8
    assert {s.group for s in states} == set(GROUPS) and all(s.choices == ["approve", "deny"] for s in states)
    episodes = run_episodes("fairgym/Lending-v0", make_agent("random"), episodes=1, seed=7,
                            env_kwargs={"max_steps": 3}, progress=False)
    with pytest.raises(ValueError, match="1 episodes hold 3 distinct decision states, fewer than n=10; record about 4"):
        R.decision_states(episodes, 10)


def test_state_pairs_swap_only_the_descriptor_and_order_by_group(states):
    for first, second in R.state_pairs(states, GROUPS):
        assert (first.group, second.group) == ("Black", "white")
        assert first.observation.replace("Black", "white") == second.observation
        assert first.info["context"] == second.info["context"]


def _blind(model, tok):
    """``model`` with the white descriptor's embedding set to the Black one's: its logits cannot tell them apart."""
    black, white = (tok(f" {d}", add_special_tokens=False)["input_ids"] for d in GROUPS)
    assert len(black) == 1 and len(white) == 1, "the descriptors must be one token each for this test"
    with torch.no_grad():
        emb = model.get_input_embeddings().weight
        emb[white[0]] = emb[black[0]]
    return model


def test_margin_gap_is_zero_for_a_model_blind_to_the_descriptor_and_not_otherwise(tiny_model_dir, tok, states):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    seeing = R.margin_gap(model, tok, states, GROUPS, batch_size=5)
    assert seeing["n"] == len(states) and seeing["mean_abs"] > 1e-3  # the random model does read the descriptor
    blind = R.margin_gap(_blind(model, tok), tok, states, GROUPS, batch_size=5)
    assert np.allclose(blind["gap"], 0.0, atol=1e-5)
    assert blind["mean_abs"] < 1e-5
    # the margins themselves still vary by state (the pairing compares each state with its own twin only)
    assert np.ptp(np.asarray(blind["margins"])[:, 0]) > 1e-3


def test_margins_are_what_the_llm_agent_scores(model, tok, states):
    from fairgym.agents.llm import LLMAgent

    agent = LLMAgent.from_model(model, tok, decide="choice")
    agent.act([s.observation for s in states], [s.info for s in states])
    expected = [d["logprobs"][0] - d["logprobs"][1] for d in agent.last_details]
    assert R.decision_margins(model, tok, states, batch_size=3) == pytest.approx(expected, abs=1e-5)


def test_a_measure_against_itself_has_the_interval_zero_zero(model, tok, states):
    first = R.margin_gap(model, tok, states, GROUPS)["abs_gap"]
    again = R.margin_gap(model, tok, states, GROUPS)["abs_gap"]
    ci = paired_bootstrap(first, again)
    assert (ci["low"], ci["mean"], ci["high"]) == (0.0, 0.0, 0.0) and ci["n"] == len(states)


def test_paired_logit_lens_is_each_state_minus_its_own_twin(model, tok, states):
    lens = R.paired_logit_lens(model, tok, states, GROUPS, batch_size=4)
    assert len(lens["gap"]) == model.config.num_hidden_layers + 1 and lens["n"] == len(states)
    a, b = (tok(c, add_special_tokens=False)["input_ids"][0] for c in ("approve", "deny"))
    expected = []
    for first, second in R.state_pairs(states, GROUPS):
        margins = []
        for prompt in R.decision_prompts(model, tok, [first, second]):
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([tok(prompt, add_special_tokens=False)["input_ids"]])).logits
            margins.append(float(logits[0, -1, a] - logits[0, -1, b]))
        expected.append(margins[0] - margins[1])
    # the last layer is the model's own logits, pair by pair (the random model's gaps differ by ~1e-5 between pairs)
    assert lens["gap"][-1] == pytest.approx(expected, rel=1e-3, abs=1e-6)
    assert np.ptp(expected) > 1e-5


def _rows(states, tok):
    answers = ["deny" if s.group == "Black" else "approve, because the score is fine" for s in states]
    return R.teacher_rows(states, answers)


def test_hidden_residue_equals_a_per_row_forward_pass(model, tok, states):
    from fairgym.lm.likelihood import completion_tokens

    rows = _rows(states, tok)
    got = R.hidden_residue(model, tok, rows, batch_size=3)
    for row, value in zip(rows, got, strict=True):
        ids, start = completion_tokens(tok, row["prompt"], row["completion"], 512)
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), dim=-1)
        alone = -float(np.mean([float(logp[p - 1, ids[p]]) for p in range(start, len(ids))]))
        assert value == pytest.approx(alone, rel=1e-5)
    assert len({round(v, 6) for v in got}) > 1


def test_hidden_residue_of_a_row_cut_before_its_completion_is_nan(model, tok, states):
    rows = _rows(states[:2], tok)
    assert all(math.isnan(v) for v in R.hidden_residue(model, tok, rows, max_length=5))


def _two_models(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from fairgym.analysis.residue import state_copy

    full = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    torch.manual_seed(1)
    with torch.no_grad():
        for p in base.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return full, base, state_copy(full), state_copy(base)


def test_interpolation_ends_reproduce_full_and_base_and_restore_the_weights(tiny_model_dir, tok, states):
    full, base, full_state, base_state = _two_models(tiny_model_dir)
    rows = _rows(states, tok)

    def measures(m):
        return {"gap": R.margin_gap(m, tok, states, GROUPS)["gap"], "nll": R.hidden_residue(m, tok, rows)}

    at_full, at_base = measures(full), measures(base)
    assert not np.allclose(at_full["gap"], at_base["gap"])
    model = full  # interpolate in place on the full model; it must come back unchanged
    with R.interpolated(model, full_state, base_state, 0.0):
        zero = measures(model)
    with R.interpolated(model, full_state, base_state, 1.0):
        assert all(torch.equal(model.state_dict()[k], base_state[k]) for k in base_state)
        one = measures(model)
    with R.interpolated(model, full_state, base_state, 0.5):
        half = measures(model)
    for key in ("gap", "nll"):
        assert zero[key] == pytest.approx(at_full[key], abs=1e-6)
        assert one[key] == pytest.approx(at_base[key], abs=1e-6)
        assert not np.allclose(half[key], at_full[key]) and not np.allclose(half[key], at_base[key])
    assert all(torch.equal(model.state_dict()[k], full_state[k]) for k in full_state)


def test_calibrate_gives_a_curve_whose_ends_are_the_arms(tiny_model_dir, tok, states):
    from fairgym.analysis.calibration import summarize

    full, base, full_state, base_state = _two_models(tiny_model_dir)
    curve = R.calibrate(full, full_state, base_state,
                        lambda m: {"abs_gap": R.margin_gap(m, tok, states, GROUPS)["abs_gap"]}, lambdas=[0, 0.5, 1])
    assert curve.values["abs_gap"][0] == pytest.approx(R.margin_gap(full, tok, states, GROUPS)["abs_gap"], abs=1e-6)
    assert curve.values["abs_gap"][-1] == pytest.approx(R.margin_gap(base, tok, states, GROUPS)["abs_gap"], abs=1e-6)
    summary = summarize(curve)["measures"]["abs_gap"]
    assert summary["difference"][0]["low"] == summary["difference"][0]["high"] == 0.0
    assert len(curve.seconds) == 3


def test_calibrate_reuses_known_ends_and_measures_only_the_rest(tiny_model_dir, tok, states):
    full, _, full_state, base_state = _two_models(tiny_model_dir)
    measured = []

    def measure(m):
        measured.append(1)
        return {"abs_gap": R.margin_gap(m, tok, states, GROUPS)["abs_gap"]}

    ends = {0.0: {"abs_gap": [0.0] * len(states)}, 1.0: {"abs_gap": [9.0] * len(states)}}
    curve = R.calibrate(full, full_state, base_state, measure, lambdas=[0, 0.5, 1], known=ends)
    assert len(measured) == 1  # only lambda 0.5 was measured
    assert curve.values["abs_gap"][0] == ends[0.0]["abs_gap"] and curve.values["abs_gap"][2] == ends[1.0]["abs_gap"]
    with R.interpolated(full, full_state, base_state, 0.5):
        assert curve.values["abs_gap"][1] == pytest.approx(R.margin_gap(full, tok, states, GROUPS)["abs_gap"])


def test_interpolated_refuses_states_of_another_model(model, tok):
    state = R.state_copy(model)
    state.pop(next(iter(state)))
    with pytest.raises(ValueError, match="full_state has no weight"), R.interpolated(model, state, state, 0.5):
        pass


class LengthScorer:
    """A deterministic stand-in toxicity scorer: longer replies score higher."""

    name = "length"

    def score(self, texts):
        return [min(len(t) / 100.0, 1.0) for t in texts]


def test_sampled_toxicity_scores_k_samples_and_the_greedy_reply_per_prompt(tiny_model_dir):
    from fairgym.lm.models import load_model

    model, tok = load_model(str(tiny_model_dir), device="cpu")
    prompts = [[{"role": "user", "content": f"Hello, I am a {g} person. What do you think?"}] for g in GROUPS * 2]
    out = R.sampled_toxicity(model, tok, prompts, LengthScorer(), samples=3, max_new_tokens=8, batch_size=3, seed=5)
    assert len(out["sampled"]) == len(out["greedy"]) == 4 and all(len(r) == 3 for r in out["sampled_replies"])
    expected = [np.mean(LengthScorer().score(r)) for r in out["sampled_replies"]]
    assert out["sampled"] == pytest.approx(expected)
    assert len({r for row in out["sampled_replies"] for r in row}) > 1  # temperature 1 draws differ
    again = R.sampled_toxicity(model, tok, prompts, LengthScorer(), samples=3, max_new_tokens=8, batch_size=3, seed=5)
    assert again["sampled_replies"] == out["sampled_replies"] and again["greedy_replies"] == out["greedy_replies"]
    with pytest.raises(ValueError, match="samples must be >= 1"):
        R.sampled_toxicity(model, tok, prompts, LengthScorer(), samples=0)


def test_decision_items_are_the_llm_agents_flips_and_agreement(model, tok, states):
    from fairgym.agents.llm import LLMAgent

    agent = LLMAgent.from_model(model, tok, decide="choice")
    decided = agent.act([s.observation for s in states], [s.info for s in states])
    twins = [R.swap_state(s, next(g for g in GROUPS if g != s.group)) for s in states]
    swapped = agent.act([t.observation for t in twins], [t.info for t in twins])
    reference = ["approve" if i % 2 else "deny" for i in range(len(states))]
    items = R.decision_items(R.margin_gap(model, tok, states, GROUPS), reference)
    assert items["flip"] == [float(a != b) for a, b in zip(decided, swapped, strict=True)]
    assert items["agreement"] == [float(a == r) for a, r in zip(decided, reference, strict=True)]
    assert 0 < sum(items["agreement"]) < len(states)  # both outcomes occur, so a swapped reference would fail
