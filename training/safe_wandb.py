"""transformers' W&B callback, with every W&B failure turned into a warning (as for ``fairgym run``).

``report_to=wandb`` in a ``TrainConfig`` adds ``SafeWandbCallback`` instead of the stock one: if ``wandb.init``,
``wandb.log`` or the final upload raises (no network in online mode, a full disk, a bad ``WANDB_*`` setting),
training goes on without W&B from then on, and the checkpoints, adapter or model, ``trainer_state.json`` and
``train_metrics.json`` are written as always.
"""

from __future__ import annotations

import warnings
from typing import Any

from transformers.integrations import WandbCallback


class SafeWandbCallback(WandbCallback):
    """``WandbCallback`` whose hooks warn instead of raising, and stop calling W&B after the first failure."""

    def _guard(self, hook: str, args: Any, *rest: Any, **kwargs: Any) -> None:
        if self._wandb is None:
            return
        try:
            getattr(super(), hook)(args, *rest, **kwargs)
        except Exception as exc:  # noqa: BLE001 - a W&B failure must never stop training or lose its files
            self._wandb = None  # the stock hooks all return early without it
            warnings.warn(f"W&B logging failed in {hook} ({type(exc).__name__}: {exc}); training goes on without "
                          f"W&B, and its files in {args.output_dir} are written as always.", RuntimeWarning,
                          stacklevel=2)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._guard("on_train_begin", args, state, control, **kwargs)

    def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._guard("on_log", args, state, control, **kwargs)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._guard("on_save", args, state, control, **kwargs)

    def on_predict(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> None:
        self._guard("on_predict", args, state, control, metrics=metrics, **kwargs)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._guard("on_train_end", args, state, control, **kwargs)

    @property
    def active(self) -> bool:
        """Whether W&B is still in use (no failure so far)."""
        return self._wandb is not None
