"""The SFT trainer's shortcuts give TRL's loss, gradients and metrics: the compact LM head (only labelled
positions) and the shared prompt prefix (run once per batch)."""

from __future__ import annotations

import pytest
import torch
import trl.trainer.utils as trl_utils
from datasets import Dataset

from fairgym.training.datasets import build_dataset
from fairgym.training.prefix_sharing import label_free_prefix_length, prefix_shared_inputs, takes_kv_cache
from fairgym.training.trainers import build_trainer, load_policy


def sft_trainer(config, compact: bool, dataset=None):
    torch.manual_seed(0)
    model, tokenizer = load_policy(config)
    trainer = build_trainer(config, model, tokenizer, build_dataset(config) if dataset is None else dataset)
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

    from fairgym.lm.models import attach_adapter, load_model

    config = tiny_config(method="lora", rank=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = sft_trainer(config, compact=True)
        trainer.model.save_pretrained(tmp_path / "adapter")
        attach_adapter(load_model(config.model, device="cpu")[0], tmp_path / "adapter")
    deprecations = [str(w.message) for w in caught if "deprecat" in str(w.message).lower()]
    assert not deprecations, deprecations


# --- the shared prompt prefix, run once per batch ---------------------------------------------------------------

SYSTEM = "Answer with one word. The applicant is a Black woman, a white man, a Muslim, a Christian. Bank cash: "


def stock_trainer(config, dataset=None):
    """TRL's stock path: every position through the head, every row's prefix through the backbone."""
    trainer = sft_trainer(config, compact=False, dataset=dataset)
    trainer.min_shared_prefix = 0
    return trainer


def padded_rows() -> Dataset:
    """Rows that share a long prefix, then differ in length (so the batch is right padded) and in target."""
    tails = ["1", "12 North credit score 640 group East West", "3 South", "7 loan repay default bank applicant"]
    return Dataset.from_list([{"prompt": [{"role": "system", "content": SYSTEM},
                                          {"role": "user", "content": f"{SYSTEM}{tail}"}],
                               "completion": [{"role": "assistant", "content": target}]}
                              for tail, target in zip(tails, ["approve", "deny", "deny", "approve"], strict=True)])


def assert_same_step(reference, trainer, batch):
    ref_loss, ref_grads, ref_metrics = loss_and_grads(reference, batch)
    loss, grads, metrics = loss_and_grads(trainer, batch)
    assert loss == pytest.approx(ref_loss, rel=1e-4, abs=1e-6)
    assert ref_grads.keys() == grads.keys() and ref_grads
    for name, grad in ref_grads.items():
        torch.testing.assert_close(grads[name], grad, atol=1e-6, rtol=1e-4, msg=name)
    assert metrics.keys() == ref_metrics.keys() >= {"entropy", "mean_token_accuracy", "num_tokens"}
    for key, values in ref_metrics.items():
        assert metrics[key] == pytest.approx(values, rel=1e-4, abs=1e-6), key


@pytest.mark.parametrize("method", ["lora", "full"])
def test_a_shared_prefix_run_once_gives_the_stock_loss_gradients_and_metrics(tiny_config, method):
    config = tiny_config(method=method, rank=4, batch_size=4, dropout=0.0)
    stock, shared = stock_trainer(config), sft_trainer(config, compact=True)
    batch = first_batch(stock)
    assert_same_step(stock, shared, batch)
    assert stock.last_shared_prefix == 0
    assert shared.last_shared_prefix >= shared.min_shared_prefix  # the Lending instructions really are shared


@pytest.mark.parametrize("method", ["lora", "full"])
def test_a_right_padded_batch_of_different_lengths_gives_the_stock_step(tiny_config, method):
    config = tiny_config(method=method, rank=4, batch_size=4, dropout=0.0)
    stock, shared = stock_trainer(config, padded_rows()), sft_trainer(config, compact=True, dataset=padded_rows())
    batch = first_batch(stock)
    lengths = batch["attention_mask"].sum(dim=1)
    assert len(set(lengths.tolist())) == 4 and bool((batch["attention_mask"][:, -1] == 0).any())  # right padded
    assert_same_step(stock, shared, batch)
    assert shared.last_shared_prefix > 20


def test_rows_that_differ_only_in_their_completion_share_the_prompt_up_to_the_first_label(tiny_config):
    prompt = [{"role": "user", "content": SYSTEM + "12 North credit score 640"}]
    rows = Dataset.from_list([{"prompt": prompt, "completion": [{"role": "assistant", "content": target}]}
                              for target in ["approve", "deny", "approve deny", "deny"]])
    config = tiny_config(method="lora", rank=4, batch_size=4, dropout=0.0)
    stock, shared = stock_trainer(config, rows), sft_trainer(config, compact=True, dataset=rows)
    batch = first_batch(stock)
    assert_same_step(stock, shared, batch)
    first_label = int((batch["labels"][0] != -100).nonzero()[0])
    assert shared.last_shared_prefix == first_label - 1  # capped: the position predicting it is in the suffix


def test_under_bf16_autocast_the_shared_prefix_gives_the_stock_loss_and_gradients(tiny_config):
    config = tiny_config(method="lora", rank=4, batch_size=4, dropout=0.0)
    stock, shared = stock_trainer(config, padded_rows()), sft_trainer(config, compact=True, dataset=padded_rows())
    batch = first_batch(stock)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # what accelerate wraps the forward in for bf16=True
        ref_loss, ref_grads, _ = loss_and_grads(stock, batch)
        loss, grads, _ = loss_and_grads(shared, batch)
    assert shared.last_shared_prefix > 20
    assert loss == pytest.approx(ref_loss, rel=1e-2)
    for name, grad in ref_grads.items():  # bf16 keeps ~3 significant digits
        torch.testing.assert_close(grads[name], grad, atol=2e-3, rtol=5e-2, msg=name)


def test_a_batch_without_a_long_shared_prefix_takes_the_stock_path(tiny_config):
    rows = Dataset.from_list([{"prompt": [{"role": "user", "content": text}],
                               "completion": [{"role": "assistant", "content": "approve"}]}
                              for text in ["North bank loan", "South credit score", "East applicant", "West group"]])
    config = tiny_config(method="lora", rank=4, batch_size=4, dropout=0.0)
    stock, shared = stock_trainer(config, rows), sft_trainer(config, compact=True, dataset=rows)
    batch = first_batch(stock)
    assert_same_step(stock, shared, batch)
    assert shared.last_shared_prefix == 0


def test_min_shared_prefix_zero_runs_every_row_whole(tiny_config):
    trainer = sft_trainer(tiny_config(method="lora", rank=4, batch_size=4), compact=True)
    trainer.min_shared_prefix = 0
    trainer.compute_loss(trainer.model, dict(first_batch(trainer)))
    assert trainer.last_shared_prefix == 0


def test_each_row_over_the_expanded_cache_scores_as_if_alone(tiny_config):
    trainer = sft_trainer(tiny_config(method="full", batch_size=4, dropout=0.0), compact=True, dataset=padded_rows())
    batch, model = first_batch(trainer), trainer.model
    shared = prefix_shared_inputs(model, batch, min_length=16)
    per_row = -model(**shared, fused_lm_head=True).log_probs.sum(dim=1)
    alone = []
    for row in range(batch["input_ids"].shape[0]):
        n = int(batch["attention_mask"][row].sum())
        one = {k: batch[k][row:row + 1, :n] for k in ("input_ids", "labels", "attention_mask")}
        alone.append(-model(**one, fused_lm_head=True).log_probs.sum())
    torch.testing.assert_close(per_row, torch.stack(alone), atol=1e-5, rtol=1e-4)
    assert len({round(x, 4) for x in per_row.tolist()}) == 4  # the rows' suffixes really differ


def test_the_shared_prefix_stops_before_the_position_predicting_the_first_label():
    ids = torch.tensor([[5, 6, 7, 8, 9, 1], [5, 6, 7, 8, 9, 2]])
    labels = torch.full_like(ids, -100)
    labels[0, 4:] = ids[0, 4:]
    labels[1, 5] = 2
    assert label_free_prefix_length(ids, torch.ones_like(ids), labels) == 3  # row 0's label at 4 is predicted at 3
    padded = torch.ones_like(ids)
    padded[1, 2:] = 0
    assert label_free_prefix_length(ids, padded, labels) == 2  # padding is never shared
    assert label_free_prefix_length(ids, None, torch.full_like(ids, -100)) == 5  # no labels: one token left per row


def test_a_model_without_a_cache_argument_is_not_given_one():
    class NoCache(torch.nn.Module):
        def forward(self, input_ids, attention_mask=None):
            return input_ids

    assert not takes_kv_cache(NoCache())
