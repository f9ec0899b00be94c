"""The compact LM head: the SFT loss runs the head only at labelled positions, with TRL's loss and gradients."""

from __future__ import annotations

import pytest
import torch
import trl.trainer.utils as trl_utils

from fairgym.training.datasets import build_dataset
from fairgym.training.trainers import build_trainer, load_policy


def sft_trainer(config, compact: bool):
    torch.manual_seed(0)
    model, tokenizer = load_policy(config)
    trainer = build_trainer(config, model, tokenizer, build_dataset(config))
    trainer.compact_lm_head = compact
    return trainer


def first_batch(trainer) -> dict:
    batch = next(iter(trainer.get_train_dataloader()))
    return trainer._prepare_inputs(batch)


def loss_and_grads(trainer, batch) -> tuple[float, dict[str, torch.Tensor], dict[str, list[float]]]:
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, dict(batch))
    loss.backward()
    grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
    trainer.model.zero_grad()
    return loss.item(), grads, {k: list(v) for k, v in trainer._metrics["train"].items()}


@pytest.mark.parametrize("method", ["lora", "full"])
def test_compact_head_gives_the_stock_loss_gradients_and_metrics(tiny_config, method):
    config = tiny_config(method=method, rank=4, batch_size=4, dropout=0.0)
    stock, compact = sft_trainer(config, compact=False), sft_trainer(config, compact=True)
    batch = first_batch(stock)
    assert int((batch["labels"] != -100).sum()) < batch["labels"].numel() // 4  # most positions are prompt
    stock_loss, stock_grads, stock_metrics = loss_and_grads(stock, batch)
    compact_loss, compact_grads, compact_metrics = loss_and_grads(compact, batch)
    assert compact_loss == pytest.approx(stock_loss, abs=1e-5)
    assert stock_grads.keys() == compact_grads.keys() and stock_grads
    for name, grad in stock_grads.items():
        torch.testing.assert_close(compact_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)
    for key in ("entropy", "mean_token_accuracy"):
        assert compact_metrics[key] == pytest.approx(stock_metrics[key], abs=1e-5)


def test_the_head_sees_only_labelled_positions(tiny_config, monkeypatch):
    trainer = sft_trainer(tiny_config(method="lora", rank=4, batch_size=4), compact=True)
    batch = first_batch(trainer)
    rows = []
    apply = trl_utils._ChunkedLogProbFunction.apply

    def counting_apply(hidden, *args):
        rows.append(hidden.shape[0])
        return apply(hidden, *args)

    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", counting_apply)
    trainer.compute_loss(trainer.model, dict(batch))
    assert rows == [int((batch["labels"][:, 1:] != -100).sum())]
    assert trl_utils._use_triton(torch.device("cpu")) is False  # the stock choice is back after the loss


def test_building_a_lora_trainer_and_loading_its_adapter_warn_nothing_a_user_cannot_act_on(tiny_config, tmp_path):
    import warnings

    from fairgym.agents.models import attach_adapter, load_model

    config = tiny_config(method="lora", rank=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = sft_trainer(config, compact=True)
        trainer.model.save_pretrained(tmp_path / "adapter")
        attach_adapter(load_model(config.model, device="cpu")[0], tmp_path / "adapter")
    deprecations = [str(w.message) for w in caught if "deprecat" in str(w.message).lower()]
    assert not deprecations, deprecations
