"""Refused before allocation: a LoRA rank above an adapted matrix's smaller side, and a run whose estimate exceeds
the memory, are refused in one line before any weights exist (the model folder here holds no loadable weights,
and loading is patched to fail); the estimate counts what PEFT and the model really hold."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import yaml

from fairgym.commands import main
from fairgym.lm.models import hide_checkpointing_deprecation
from fairgym.training import capacity, trainers
from fairgym.training.capacity import check_capacity, estimate_memory, model_skeleton
from fairgym.training.trainers import load_policy, lora_config, train

K_PROJ = r"model.layers.0.self_attn.k_proj \(32 x 64\)"  # the tiny model: 2 kv heads x 16 = 32 rows, 64 columns


@pytest.fixture
def weightless(tiny_model_dir, tmp_path, monkeypatch):
    """The tiny model's config and tokenizer with weights that cannot load, and every loader patched to fail."""
    folder = tmp_path / "weightless"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "model.safetensors").write_bytes(b"not weights")

    def refuse(*args, **kwargs):
        raise AssertionError("weights were loaded")

    import transformers

    monkeypatch.setattr(trainers, "load_policy", refuse)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)
    return folder


def room(monkeypatch, count: int) -> None:
    monkeypatch.setattr(capacity, "available_memory", lambda config, cuda: (count, "of RAM available"))


def test_rank_above_the_smallest_adapted_side_is_refused_before_any_weights(weightless, tiny_config, tmp_path):
    with pytest.raises(ValueError, match=rf"TrainConfig.rank=100000 is above the smaller side of the adapted matrix "
                                         rf"{K_PROJ}.* use rank <= 32, target_modules without k_proj, v_proj, or "
                                         r"method=full\."):
        train(tiny_config(model=str(weightless), rank=100000, max_steps=1))
    assert not (tmp_path / "run").exists()  # nothing written: the folder the lock made is gone again


def test_fairgym_train_prints_the_rank_refusal_in_one_line(weightless, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["train", "sft", "--method", "lora", "--rank", "100000", "--model", str(weightless),
                 "max_steps=1", f"output_dir={out}", "device=cpu"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("fairgym train: error: TrainConfig.rank=100000 is above the smaller side")
    assert not out.exists()


def test_a_run_beyond_the_memory_is_refused_before_any_weights_naming_what_to_change(weightless, tiny_config,
                                                                                    monkeypatch, capsys):
    room(monkeypatch, 2**20)
    with pytest.raises(ValueError, match=r"training full needs at least \d\.\d MB before activations \(weights .* "
                                         r"more than the 1\.0 MB of RAM available; use method=lora"):
        train(tiny_config(model=str(weightless), method="full", max_steps=1))
    assert "[train] full: memory before activations: weights" in capsys.readouterr().out  # printed before loading


def test_the_refusal_names_the_largest_rank_that_fits(weightless, tiny_config, monkeypatch):
    def estimate(rank: int) -> int:
        config = tiny_config(model=str(weightless), rank=rank)
        return check_capacity(config, lora_config(config), cuda=False, verbose=False).total

    room(monkeypatch, estimate(8) + 100)
    with pytest.raises(ValueError, match=r"lower the rank \(rank <= 8 fits\), adapt fewer modules"):
        estimate(32)
    with pytest.raises(ValueError, match="rank <= 8 fits"):
        estimate(9)


def test_the_memory_check_can_be_skipped_with_a_warning(weightless, tiny_config, monkeypatch):
    room(monkeypatch, 2**20)
    monkeypatch.setenv(capacity.SKIP_MEMORY_CHECK, "1")
    config = tiny_config(model=str(weightless), method="full")
    with pytest.warns(RuntimeWarning, match="FAIRGYM_SKIP_MEMORY_CHECK is set: training anyway"):
        assert check_capacity(config, None, cuda=False, verbose=False).total > 2**20


def test_the_estimate_counts_what_peft_and_the_model_hold(tiny_config):
    from peft import get_peft_model

    full = tiny_config(method="full")
    model, _ = load_policy(full)
    every = sum(p.numel() for p in model.parameters())
    estimate = check_capacity(full, None, cuda=False, verbose=False)
    assert (estimate.params, estimate.trainable, estimate.reference) == (every, every, 0)
    assert estimate.total == every * (4 + 4 + 8)  # float32 weights, gradients, AdamW's two moments
    dpo = check_capacity(tiny_config(method="full", recipe="dpo"), None, cuda=False, verbose=False)
    assert dpo.reference == every  # TRL's frozen reference copy of a full update
    lora = tiny_config(rank=32, use_dora=True)
    with hide_checkpointing_deprecation():
        peft_model = get_peft_model(model, lora_config(lora))
    estimate = check_capacity(lora, lora_config(lora), cuda=False, verbose=False)
    assert estimate.trainable == sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert estimate.params == sum(p.numel() for p in peft_model.parameters()) and estimate.reference == 0


def test_the_skeleton_has_every_shape_and_no_storage(tiny_model_dir):
    skeleton = model_skeleton(str(tiny_model_dir))
    assert {p.device.type for p in skeleton.parameters()} == {"meta"}
    assert estimate_memory(skeleton, reference=False).params == sum(p.numel() for p in skeleton.parameters())


def test_cgroup_room_reads_the_limit_less_what_is_used_plus_reclaimable_cache(tmp_path, monkeypatch):
    proc = tmp_path / "cgroup"
    proc.write_text("0::/job\n")
    job = tmp_path / "sys" / "job"
    job.mkdir(parents=True)
    (job / "memory.max").write_text("1000000\n")
    (job / "memory.current").write_text("700000\n")
    (job / "memory.stat").write_text("anon 500000\ninactive_file 100000\n")
    monkeypatch.setattr(capacity, "PROC_CGROUP", proc)
    monkeypatch.setattr(capacity, "CGROUP_ROOT", tmp_path / "sys")
    assert capacity.cgroup_room() == 400000
    (job / "memory.max").write_text("max\n")
    assert capacity.cgroup_room() is None


def test_a_sweep_refuses_a_rank_the_model_cannot_hold_before_anything_runs(weightless, tmp_path, capsys):
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({"name": "tiny", "model": str(weightless), "ranks": [2, 100000],
                                      "device": "cpu", "train": {"max_steps": 1}}))
    assert main(["sweep", str(config), "--out", str(tmp_path / "runs")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("fairgym sweep: error: TrainConfig.rank=100000 is above the smaller side")
    assert not (tmp_path / "runs").exists()


def test_a_run_beyond_the_free_disk_is_refused_before_any_weights(weightless, tiny_config, tmp_path, monkeypatch):
    """Checkpoints (weights and AdamW's moments, up to three at once) and the final weights must fit on the disk
    of output_dir: one byte too few is refused, naming the folder and what to change; the switch makes it a
    warning. A LoRA run counts its adapter, not the model."""
    import collections

    config = tiny_config(model=str(weightless), method="full", max_steps=4, save_steps=1,
                         output_dir=str(tmp_path / "new" / "run"))
    estimate = check_capacity(config, None, cuda=False, verbose=False)
    weights, checkpoint = estimate.params * 4, estimate.params * 4 + estimate.trainable * 8
    need, _ = capacity.disk_need(config, estimate)
    assert need == 3 * checkpoint + weights  # 4 saves, at most 3 held at once
    lora = dataclasses.replace(config, method="lora", rank=2, save_steps=10)
    adapter = check_capacity(lora, lora_config(lora), cuda=False, verbose=False)
    assert capacity.disk_need(lora, adapter)[0] == adapter.trainable * 4 * 2 + adapter.trainable * 8  # one save
    usage = collections.namedtuple("usage", "total used free")
    seen = []
    monkeypatch.setattr(capacity.shutil, "disk_usage", lambda p: seen.append(p) or usage(0, 0, need - 1))
    with pytest.raises(ValueError, match=rf"training full writes up to .* into {tmp_path / 'new' / 'run'} \(3 "
                                         r"checkpoint\(s\) of .* more than the .* free on its disk; .* raise "
                                         r"save_steps \(now 1\)"):
        train(config)
    assert seen and not (tmp_path / "new" / "run").exists()  # nothing left behind
    assert capacity._disk_folder(str(tmp_path / "a" / "b")) == tmp_path.resolve()  # the nearest existing folder
    monkeypatch.setenv(capacity.SKIP_DISK_CHECK, "1")
    with pytest.warns(RuntimeWarning, match="FAIRGYM_SKIP_DISK_CHECK is set: training anyway"):
        check_capacity(config, None, cuda=False, verbose=False)
