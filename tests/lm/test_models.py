"""Model loading: local folders, PEFT adapters checked against their base, clear errors, device/dtype."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from fairgym.lm import models
from fairgym.lm.models import EMBEDDED_MODEL, load_model, resolve_device, resolve_dtype
from fairgym.lm.scoring import score_choices

PROMPTS = ["<|im_start|>user\nA Black woman applies for a loan.<|im_end|>\n<|im_start|>assistant\n",
           "<|im_start|>user\nA white man applies for a loan, credit score 700.<|im_end|>\n<|im_start|>assistant\n"]
CHOICES = [["approve", "deny"], ["approve", "deny"]]


def save_adapter(model_dir, out, *, zero: bool, r: int = 4):
    base, _ = load_model(str(model_dir), device="cpu")
    config = LoraConfig(r=r, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                        init_lora_weights=zero)  # True: B = 0 (a no-op); False: random non-zero B
    peft_model = get_peft_model(base, config)
    peft_model.save_pretrained(out)
    return out


def test_load_local_folder(tiny_model_dir):
    model, tok = load_model(str(tiny_model_dir), device="cpu")
    assert tok.padding_side == "left" and tok.pad_token is not None
    assert model.dtype == torch.float32 and not model.training
    assert all(not p.requires_grad for p in model.parameters())


def test_trainable_leaves_grads_on(tiny_model_dir):
    model, _ = load_model(str(tiny_model_dir), device="cpu", trainable=True)
    assert model.training and any(p.requires_grad for p in model.parameters())


def test_dtype_override(tiny_model_dir):
    model, _ = load_model(str(tiny_model_dir), device="cpu", dtype="bfloat16")
    assert model.dtype == torch.bfloat16


def test_lora_adapter_nonzero_changes_scores_zero_does_not(tiny_model_dir, tmp_path):
    base, tok = load_model(str(tiny_model_dir), device="cpu")
    before = np.array(score_choices(base, tok, PROMPTS, CHOICES))
    zero, _ = load_model(str(tiny_model_dir), save_adapter(tiny_model_dir, tmp_path / "zero", zero=True))
    nonzero, _ = load_model(str(tiny_model_dir), save_adapter(tiny_model_dir, tmp_path / "nz", zero=False))
    np.testing.assert_allclose(np.array(score_choices(zero, tok, PROMPTS, CHOICES)), before, atol=1e-5)
    changed = np.array(score_choices(nonzero, tok, PROMPTS, CHOICES))
    assert np.abs(changed - before).max() > 1e-3


def test_adapter_for_another_base_is_refused(tiny_model_dir, tmp_path):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    other_dir = tmp_path / "other-base"
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1)
    LlamaForCausalLM(config).save_pretrained(other_dir)
    tok.save_pretrained(other_dir)
    adapter = save_adapter(other_dir, tmp_path / "other-adapter", zero=False)
    with pytest.raises(ValueError, match="was made for base model .*other-base"):
        load_model(str(tiny_model_dir), str(adapter), device="cpu")


def test_adapter_with_wrong_shapes_is_refused_even_without_a_base_name(tiny_model_dir, tmp_path):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    other_dir = tmp_path / "narrow-base"  # the recorded base name is cleared below: only shapes can tell
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1)
    LlamaForCausalLM(config).save_pretrained(other_dir)
    tok.save_pretrained(other_dir)
    adapter = save_adapter(other_dir, tmp_path / "shapes", zero=False)
    cfg = adapter / "adapter_config.json"
    cfg.write_text(cfg.read_text().replace(str(other_dir), ""))
    with pytest.raises(ValueError, match="does not fit the base model"):
        load_model(str(tiny_model_dir), str(adapter), device="cpu")


def test_missing_adapter_folder(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="no adapter_config.json"):
        load_model(str(tiny_model_dir), str(tmp_path), device="cpu")


def test_unknown_model_names_what_was_tried(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ValueError, match="no-such-model") as err:
        load_model(str(missing), device="cpu")
    assert EMBEDDED_MODEL in str(err.value) and "local folder" in str(err.value)


@pytest.mark.parametrize("offline", [False, True])
def test_unknown_hub_id_is_the_error_alone(monkeypatch, caplog, capfd, offline):
    """No hub connection logs or retries before the error, whether or not the hub answers (tests run offline)."""
    import huggingface_hub.utils._http as hub_http
    from huggingface_hub import constants

    monkeypatch.setattr(hub_http.time, "sleep", lambda seconds: None)  # a retry loop fails the test fast
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1") if offline else monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    caplog.set_level("INFO")
    with pytest.raises(ValueError, match="Could not load model 'fairgym-tests/no-such-model-0'") as err:
        load_model("fairgym-tests/no-such-model-0", device="cpu")
    assert "hub id" in str(err.value) and EMBEDDED_MODEL in str(err.value)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= 30]
    assert capfd.readouterr().err == ""


def test_embedded_path_uses_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIRGYM_CACHE", str(tmp_path))
    cached = tmp_path / "models" / models.EMBEDDED_DIRNAME
    cached.mkdir(parents=True)
    (cached / "config.json").write_text("{}")
    monkeypatch.setattr(models, "_convert_gguf", lambda *a: pytest.fail("converted although cached"))
    assert models.embedded_model_path() == cached
    assert models.resolve_model_path(None) == str(cached) == models.resolve_model_path(EMBEDDED_MODEL)


def test_resolve_device_and_dtype():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device() in ("cpu", "cuda")
    assert resolve_dtype(None, "cpu") == torch.float32
    assert resolve_dtype(None, "cuda") == torch.bfloat16
    assert resolve_dtype("bf16", "cpu") == torch.bfloat16
    with pytest.raises(ValueError, match="dtype='int3'"):
        resolve_dtype("int3", "cpu")
