"""Each diagnostic on a constructed case with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fairgym.analysis import diagnostics as D


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def build_tiny_model(tok, seed: int = 0, tiny_dir=None):
    """The tiny model from the shared fixture folder; ``seed > 0`` perturbs every weight (a different model)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_dir or tok.name_or_path).eval()
    if seed:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=generator))
    return model


@pytest.fixture(scope="module")
def model(tok):
    return build_tiny_model(tok, seed=0)


PROMPTS = ["<|im_start|>user\nThe applicant is a Black woman. approve or deny?<|im_end|>\n<|im_start|>assistant\n",
           "<|im_start|>user\nloan?<|im_end|>\n<|im_start|>assistant\n",
           "credit score group North repay"]


def test_kl_identical_models_is_zero_and_perturbed_positive(tok, model):
    same = D.next_token_kl(model, model, tok, PROMPTS, batch_size=2)
    assert same["n"] == 3 and len(same["per_prompt"]) == 3
    assert same["mean"] == pytest.approx(0.0, abs=1e-6)
    other = build_tiny_model(tok, seed=1)
    moved = D.next_token_kl(model, other, tok, PROMPTS)
    assert moved["mean"] > 1e-3 and all(v > 0 for v in moved["per_prompt"])


def test_kl_uses_the_last_real_token_despite_padding(tok, model):
    alone = D.next_token_kl(model, build_tiny_model(tok, seed=1), tok, PROMPTS[1:2])["mean"]
    batched = D.next_token_kl(model, build_tiny_model(tok, seed=1), tok, PROMPTS, batch_size=3)["per_prompt"][1]
    assert batched == pytest.approx(alone, rel=1e-4)


SHARED = "<|im_start|>system\nYou are a loan officer. Answer approve or deny.<|im_end|>\n<|im_start|>user\n"


@pytest.mark.parametrize("prompts", [PROMPTS, [SHARED + "score 640, a Black woman<|im_end|>\n",
                                               SHARED + "score 700<|im_end|>\n<|im_start|>assistant\n",
                                               SHARED + "loan?"]], ids=["no-shared-prefix", "shared-prefix"])
def test_decision_logits_equal_each_prompt_scored_alone(tok, model, prompts):
    logits, _ = D.decision_logits(model, tok, prompts, batch_size=2)
    for i, prompt in enumerate(prompts):
        ids = tok(prompt, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            alone = model(**ids).logits[0, -1]
        torch.testing.assert_close(logits[i], alone, atol=1e-4, rtol=1e-4)


def test_shared_prefix_decision_logits_use_no_deprecated_transformers_argument(tok, model):
    import warnings

    from fairgym.lm.scoring import score_choices

    prompts = [SHARED + "score 640<|im_end|>\n", SHARED + "score 700<|im_end|>\n"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        D.decision_logits(model, tok, prompts, batch_size=2)
        score_choices(model, tok, prompts, [["approve", "deny"]] * 2)
    deprecations = [str(w.message) for w in caught if "deprecat" in str(w.message).lower()]
    assert not deprecations, deprecations


def test_decision_logits_build_the_prefix_cache_with_choice_scorings_helper(tok, model, monkeypatch):
    from fairgym.lm import scoring

    prompts = [SHARED + "score 640<|im_end|>\n", SHARED + "score 700<|im_end|>\n", SHARED + "loan?"]
    calls = []

    def spy(model_, prefix, batch, device):
        calls.append((len(prefix), batch))
        return scoring.prefix_cache(model_, prefix, batch, device)

    monkeypatch.setattr(D, "prefix_cache", spy)
    logits, _ = D.decision_logits(model, tok, prompts, batch_size=2)
    ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    assert calls == [(scoring.shared_prefix_length(ids), 2), (scoring.shared_prefix_length(ids), 1)]
    assert scoring.shared_prefix_length(ids) > 10  # the system prompt really is shared
    with torch.no_grad():
        alone = model(**tok(prompts[2], return_tensors="pt", add_special_tokens=False)).logits[0, -1]
    torch.testing.assert_close(logits[2], alone, atol=1e-4, rtol=1e-4)


def test_logit_lens_last_row_is_the_final_margin(tok, model):
    lens = D.logit_lens(model, tok, PROMPTS)
    assert lens.shape == (model.config.num_hidden_layers + 1, len(PROMPTS))
    a, b = D.first_token_id(tok, "approve"), D.first_token_id(tok, "deny")
    with torch.no_grad():
        for j, prompt in enumerate(PROMPTS):
            logits = model(**tok(prompt, return_tensors="pt", add_special_tokens=False)).logits[0, -1]
            assert lens[-1, j] == pytest.approx(float(logits[a] - logits[b]), abs=1e-4)
    assert not np.allclose(lens[0], lens[-1])


def test_logit_lens_rejects_choices_with_the_same_first_token(tok, model):
    with pytest.raises(ValueError, match="first token"):
        D.logit_lens(model, tok, PROMPTS, choices=("approve", "approve it"))


OBS = ["A Black applicant with score 600. approve or deny?", "A white applicant with score 700. approve or deny?",
       "A Black applicant with score 500. approve or deny?"]
INFOS = [{"group": "Black"}, {"group": "white"}, {"group": "Black"}]


def test_swap_invariant_agent_never_flips():
    def blind(observations, infos):
        return ["approve" if "score 7" in o or "score 6" in o else "deny" for o in observations]

    result = D.counterfactual_flip_rate(blind, OBS, INFOS, ["Black", "white"])
    assert result["overall"] == 0.0
    assert result["pairs"] == {"Black->white": 0.0, "white->Black": 0.0}
    assert result["n"] == {"Black->white": 2, "white->Black": 1}


def test_group_keyed_agent_always_flips():
    class Keyed:
        def act(self, observations, infos):
            return ["deny" if "Black" in o else "approve" for o in observations]

    result = D.counterfactual_flip_rate(Keyed(), OBS, INFOS, ["Black", "white"])
    assert result["overall"] == 1.0 and set(result["pairs"].values()) == {1.0}


def test_flip_rate_pair_without_decisions_is_nan():
    result = D.counterfactual_flip_rate(lambda o, i: ["deny"] * len(o), OBS[:1], INFOS[:1], ["Black", "white"])
    assert math.isnan(result["pairs"]["white->Black"]) and result["overall"] == 0.0


def _rank_r(rows, cols, r, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, r, generator=g) @ torch.randn(r, cols, generator=g)


def test_energy_share_of_rank_r_update_is_one_at_r():
    base = {"model.layers.0.mlp.up_proj.weight": torch.zeros(12, 10), "model.embed_tokens.weight": torch.zeros(5, 4)}
    tuned = {"model.layers.0.mlp.up_proj.weight": _rank_r(12, 10, 3), "model.embed_tokens.weight": torch.ones(5, 4)}
    spec = D.update_spectrum(base, tuned, ranks=[1, 2, 3, 8])
    assert list(spec["matrices"]) == ["model.layers.0.mlp.up_proj.weight"]  # embeddings are left out
    share = spec["energy_share"]
    assert share[3] == pytest.approx(1.0) and share[8] == pytest.approx(1.0)
    assert share[2] < 1.0 - 1e-6 and share[1] < share[2]


def test_update_spectrum_needs_ranks():
    with pytest.raises(ValueError, match="rank"):
        D.update_spectrum({}, {}, ranks=[])


def test_lora_update_matches_merged_delta_and_has_adapter_rank(tok):
    from peft import LoraConfig, get_peft_model

    base = build_tiny_model(tok, seed=0)
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    config = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(build_tiny_model(tok, seed=0), config)
    result = D.lora_update(base, peft_model, ranks=[1, 2])
    name = "model.layers.0.self_attn.q_proj.weight"
    assert name in result["deltas"] and len(result["deltas"]) == 4
    merged = peft_model.merge_and_unload().state_dict()
    assert torch.allclose(result["deltas"][name], merged[name] - base_state[name], atol=1e-5)
    assert result["energy_share"][2] == pytest.approx(1.0) and result["energy_share"][1] < 1.0
    # the arm's own update sits inside its subspace; a random full update mostly does not
    cmp = D.compare_updates(result["deltas"], result["deltas"], rank=2)
    assert cmp["subspace_share"] == pytest.approx(1.0) and cmp["cosine"] == pytest.approx(1.0)
    full = {n: torch.randn_like(d) for n, d in result["deltas"].items()}
    cmp = D.compare_updates(full, result["deltas"], rank=2)
    assert cmp["subspace_share"] <= cmp["top_r_share"] + 1e-9 < 1.0


def test_best_rank_r_arm_holds_exactly_the_top_r_share():
    """An arm equal to the full update's truncated SVD at rank r is the Eckart-Young optimum."""
    generator = torch.Generator().manual_seed(3)
    full = torch.randn(40, 90, generator=generator, dtype=torch.float64)
    u, s, vh = torch.linalg.svd(full, full_matrices=False)
    best = (u[:, :3] * s[:3]) @ vh[:3]
    cmp = D.compare_updates({"w": full}, {"w": best}, rank=3)
    assert cmp["subspace_share"] == pytest.approx(cmp["top_r_share"], abs=1e-9)
    assert cmp["top_r_share"] == pytest.approx(float((s[:3] ** 2).sum() / (s**2).sum()), abs=1e-12)


def _set_lora_update(peft_model, name: str, delta: torch.Tensor) -> None:
    """Make the LoRA layer ``name`` hold exactly ``delta`` (B @ A * scaling = delta, rank <= r)."""
    layer = peft_model.get_submodule(name)
    r, scaling = layer.r["default"], layer.scaling["default"]
    u, s, vh = torch.linalg.svd(delta / scaling, full_matrices=False)
    with torch.no_grad():
        layer.lora_B["default"].weight.copy_(u[:, :r] * s[:r].sqrt())
        layer.lora_A["default"].weight.copy_(s[:r].sqrt()[:, None] * vh[:r])


@pytest.mark.parametrize("inside", [True, False])
def test_intruder_dimensions_zero_inside_the_base_top_subspace(tok, inside):
    """An update along the base weight's own top singular directions adds no intruder; a strong update along the
    direction spread evenly over every base singular vector (|cosine| 1/8 with each of the 64) adds one."""
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(build_tiny_model(tok), LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"]))
    name = "base_model.model.model.layers.0.self_attn.q_proj"
    weight = peft_model.get_submodule(name).get_base_layer().weight.detach()
    u, s, vh = torch.linalg.svd(weight, full_matrices=False)
    if inside:
        delta = u[:, :2] @ torch.diag(s[:2]) @ vh[:2]  # doubles the two leading singular values
    else:
        a, b = u.sum(dim=1, keepdim=True), vh.sum(dim=0, keepdim=True)
        delta = 10 * s[0] * (a / a.norm()) @ (b / b.norm())
    _set_lora_update(peft_model, name, delta)
    before = {k: v.clone() for k, v in peft_model.state_dict().items()}
    result = D.intruder_dimensions(peft_model, top_k=4)
    assert result["layers"] == 2  # q_proj in both layers
    assert result["per_layer"][name] == (0 if inside else 1)
    # the probe adapter is gone and the model's own adapter untouched
    assert peft_model.active_adapter == "default" and list(peft_model.peft_config) == ["default"]
    after = peft_model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
