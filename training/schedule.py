"""Learning rate per epoch: step / cosine / plateau / none, each with an optional linear warmup.

Our own small class rather than torch's schedulers: its whole state is three numbers, checkpointed exactly,
and plateau reads the validation loss the trainer already computes.
"""

from __future__ import annotations

import math

from training.config import TrainConfig


class EpochSchedule:
    def __init__(self, config: TrainConfig):
        self.config = config
        self.plateau_scale = 1.0
        self.best_loss = math.inf
        self.bad_epochs = 0

    def lr(self, epoch: int) -> float:
        """Learning rate for 0-based ``epoch``."""
        c = self.config
        if epoch < c.warmup_epochs:
            return c.lr * (epoch + 1) / (c.warmup_epochs + 1)
        if c.scheduler == "step":
            return c.lr * c.gamma ** sum(epoch >= m for m in c.milestones)
        if c.scheduler == "cosine":
            span = max(1, c.epochs - c.warmup_epochs)
            return 0.5 * c.lr * (1 + math.cos(math.pi * (epoch - c.warmup_epochs) / span))
        if c.scheduler == "plateau":
            return c.lr * self.plateau_scale
        return c.lr

    def observe(self, epoch: int, val_loss: float) -> None:
        """Plateau: cut the rate after ``plateau_patience`` epochs without a lower validation loss."""
        if self.config.scheduler != "plateau" or epoch < self.config.warmup_epochs:
            return
        if val_loss < self.best_loss:
            self.best_loss, self.bad_epochs = val_loss, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > self.config.plateau_patience:
            self.plateau_scale *= self.config.plateau_factor
            self.bad_epochs = 0

    def state_dict(self) -> dict:
        return {"plateau_scale": self.plateau_scale, "best_loss": self.best_loss, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.plateau_scale, self.best_loss, self.bad_epochs = (state["plateau_scale"], state["best_loss"],
                                                               state["bad_epochs"])
