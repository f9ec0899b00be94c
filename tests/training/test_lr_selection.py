"""Learning rate per arm: the grid point with the lowest held-out teacher loss wins; LoRA's rule without a grid."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from test_sweep import tiny_sweep

from fairgym.training import trainers
from fairgym.training.lr_selection import choose_rate, heldout_loss, heldout_rows
from fairgym.training.sweep import run_sweep
from fairgym.training.sweep_folder import read_status


def test_choose_rate_takes_the_lowest_finite_loss():
    assert choose_rate({1e-4: 0.9, 1e-3: 0.2, 1e-2: float("nan")}) == 1e-3
    assert choose_rate({1e-4: 0.5, 1e-3: 0.5}) == 1e-4  # a tie: the smaller rate
    with pytest.raises(ValueError, match="undefined"):
        choose_rate({1e-4: float("nan")})


def test_heldout_loss_equals_each_completion_scored_alone(tiny_model_dir):
    """The batched loss (right padding, LM head only at completion positions) equals the per-row loss from the
    full logits of each prompt + completion."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fairgym.lm.likelihood import completion_tokens

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    rows = heldout_rows(tiny_sweep(tiny_model_dir, learning_rates={"full": [1e-3]}))
    assert len(rows) == 2 * 3  # lr_selection.episodes=2 episodes of 3 decisions, no counterfactual copies
    total, count = 0.0, 0
    for row in rows:
        ids, start = completion_tokens(tokenizer, row["prompt"], row["completion"], 512)
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), dim=-1)
        total -= sum(float(logp[p - 1, ids[p]]) for p in range(start, len(ids)))
        count += len(ids) - start
    assert heldout_loss(model, tokenizer, rows, batch_size=4) == pytest.approx(total / count, rel=1e-5)


def test_grid_picks_the_rate_with_the_lowest_heldout_loss_and_reuses_its_run(tiny_model_dir, tmp_path, monkeypatch):
    """On the tiny model a rate of 1e-7 cannot move 4 steps of training, 1e-2 learns the one-word answers: the
    known answer is 1e-2. The full arm reuses the winning run; LoRA gets 10x the chosen full rate by the rule."""
    real_train = trainers.train
    calls = []
    monkeypatch.setattr(trainers, "train", lambda config: calls.append(config) or real_train(config))
    config = tiny_sweep(tiny_model_dir, name="tiny-lr", include_base=False,
                        train={**dataclasses.asdict(tiny_sweep(tiny_model_dir).train), "max_steps": 4},
                        learning_rates={"full": [1e-7, 1e-2]}, diagnostics={"enabled": False})
    sweep_dir = run_sweep(config, out_root=tmp_path)
    rates = json.loads((sweep_dir / "learning_rates.json").read_text())
    losses = {float(k): v for k, v in rates["full"]["losses"].items()}
    assert rates["full"]["learning_rate"] == 1e-2 and losses[1e-2] < losses[1e-7] and math.isfinite(losses[1e-7])
    assert rates["lora-r2"]["learning_rate"] == pytest.approx(0.1)
    assert "lora_lr_multiplier (10)" in rates["lora-r2"]["rule"]
    assert sorted((c.method, c.learning_rate) for c in calls) == [("full", 1e-7), ("full", 1e-2), ("lora", 0.1)]
    full = read_status(sweep_dir / "full-s0")
    assert full["state"] == "done" and full["weights"]["model"] == rates["full"]["winner"]["weights"]["model"]
    report = (sweep_dir / "report.md").read_text()
    assert "| full | 1/1 | 0.01 (grid) |" in report and "| lora-r2 | 1/1 | 0.1 (rule) |" in report
    assert "| teacher |" in report and "## Learning rates" in report


def test_lora_rate_selected_once_at_lr_selection_lora_rank(tiny_model_dir, tmp_path, monkeypatch):
    """With ``lr_selection.lora_rank`` one LoRA grid runs (at that rank, even when not swept) and every LoRA arm
    shares its rate; full runs its own grid."""
    from fairgym.training import lr_selection
    from fairgym.training.sweep_arms import plan_arms

    ran = []

    def fake_grid(config, arm, sweep_dir, base_model, grid, rows):
        ran.append(arm.label)
        return lr_selection.RateChoice(learning_rate=grid[-1], rule="grid", losses={}, winner={"weights": {}})

    monkeypatch.setattr(lr_selection, "grid_rate", fake_grid)
    monkeypatch.setattr(lr_selection, "heldout_rows", lambda config: [])
    config = tiny_sweep(tiny_model_dir, ranks=[1, 2], seeds=[0, 1], lr_selection={"lora_rank": 8},
                        learning_rates={"full": [1e-5, 2e-5], "lora": [1e-4, 3e-4]})
    chosen = lr_selection.select_learning_rates(config, tmp_path, None, plan_arms(config))
    assert ran == ["full", "lora-r8"]
    assert chosen["lora-r1"].learning_rate == chosen["lora-r2"].learning_rate == 3e-4
    assert chosen["lora-r1"].selected_at == "lora-r8" and chosen["lora-r1"].winner is None
    assert chosen["full"].learning_rate == 2e-5


def test_a_winner_at_the_grid_edge_extends_the_grid(tiny_model_dir, tmp_path, monkeypatch):
    """The best rate at the top of the grid adds the next rate beyond it until the winner is inside (or the
    extension budget is spent, which the choice records)."""
    from fairgym.training import lr_selection
    from fairgym.training.sweep_arms import lora_arm

    best_at = 1e-2  # held-out loss is lowest here, beyond the configured grid
    monkeypatch.setattr(lr_selection, "grid_point", lambda config, arm, sweep_dir, base, lr, rows: {
        "loss": abs(math.log10(lr / best_at)), "seconds": 1.0, "weights": {}})
    config = tiny_sweep(tiny_model_dir, lr_selection={"extend": 3}, learning_rates={"lora": [1e-4, 3e-4, 1e-3]})
    choice = lr_selection.grid_rate(config, lora_arm(2, 0), tmp_path, None, [1e-4, 3e-4, 1e-3], [])
    assert choice.learning_rate == 1e-2 and choice.extended == [3e-3, 1e-2, 3e-2] and choice.at_edge is False
    short = tiny_sweep(tiny_model_dir, lr_selection={"extend": 1}, learning_rates={"lora": [1e-4, 3e-4, 1e-3]})
    choice = lr_selection.grid_rate(short, lora_arm(2, 0), tmp_path, None, [1e-4, 3e-4, 1e-3], [])
    assert choice.learning_rate == 3e-3 and choice.at_edge is True
    assert lr_selection.next_rate([1e-4, 1e-3], 1e-4) == 1e-5 and lr_selection.next_rate([1e-4, 3e-4], 2e-4) is None


def test_rates_only_chooses_the_rates_and_trains_no_arm(tiny_model_dir, tmp_path, capsys):
    """``fairgym sweep --rates-only``: learning_rates.json with every arm's grid, and no arm, teacher row or report;
    a sweep without a grid is refused before anything runs."""
    import yaml

    from fairgym.commands import main

    config = tiny_sweep(tiny_model_dir, name="tiny-rates", include_base=False, ranks=[1, 2],
                        learning_rates={"full": [1e-7, 1e-2], "lora": [1e-2]})
    path = tmp_path / "rates.yaml"
    path.write_text(yaml.safe_dump(dataclasses.asdict(config)))
    assert main(["sweep", str(path), "--out", str(tmp_path), "--rates-only"]) == 0
    sweep_dir = tmp_path / "tiny-rates"
    rates = json.loads((sweep_dir / "learning_rates.json").read_text())
    assert sorted(rates) == ["full", "lora-r1", "lora-r2"] and rates["full"]["learning_rate"] == 1e-2
    assert "tiny-rates: lora-r2 learning rate 0.01 (at the grid's edge)" in capsys.readouterr().out
    assert not [p.name for p in sweep_dir.iterdir() if p.name in ("full-s0", "lora-r1-s0", "teacher", "report.md")]
    no_grid = tmp_path / "no-grid.yaml"
    no_grid.write_text(yaml.safe_dump({**dataclasses.asdict(config), "name": "no-grid", "learning_rates": {}}))
    assert main(["sweep", str(no_grid), "--out", str(tmp_path), "--rates-only"]) == 2
    err = capsys.readouterr().err
    assert "--rates-only chooses learning rates" in err and "learning_rates: {lora: [0.001" in err
    assert not (tmp_path / "no-grid").exists()


def test_rates_only_reports_a_failed_selection_with_exit_1(tiny_model_dir, tmp_path, capsys, monkeypatch):
    """A label whose selection fails is printed with its error (not a crash on the missing rate), and the command
    exits 1, as a sweep with an arm not done does."""
    import yaml

    from fairgym.commands import main

    def broken(config):
        raise RuntimeError("no room")

    monkeypatch.setattr(trainers, "train", broken)
    config = tiny_sweep(tiny_model_dir, name="tiny-fail", include_base=False, include_full=False, ranks=[1],
                        learning_rates={"lora": [1e-2]})
    path = tmp_path / "fail.yaml"
    path.write_text(yaml.safe_dump(dataclasses.asdict(config)))
    assert main(["sweep", str(path), "--out", str(tmp_path), "--rates-only"]) == 1
    assert "tiny-fail: lora-r1 learning rate not chosen (RuntimeError: no room)" in capsys.readouterr().out
