"""Callbacks that break a run on cue, as a crash or a diverging optimizer would."""

import os
import signal

import lightning as L
import torch


class KillAt(L.Callback):
    """Send this process `signal` (SIGKILL) in `hook` once it has trained `batches` batches (or,
    without them, once `trainer.global_step` reaches `step`): a kill, a SIGTERM at a chosen
    moment, such as inside a window of gradient accumulation."""

    def __init__(
        self,
        step: int = 0,
        hook: str = "on_train_batch_start",
        signal: str = "SIGKILL",
        batches: int | None = None,
    ) -> None:
        self.step, self.batches, self.signal, self.sent = step, batches, signal, False
        setattr(self, hook, self._maybe_kill)

    def _maybe_kill(self, trainer: L.Trainer, *args, **kwargs) -> None:
        trained = trainer.fit_loop.epoch_loop.batch_progress.total.completed
        due = trained >= self.batches if self.batches else trainer.global_step >= self.step
        if due and not self.sent:
            self.sent = True  # a SIGTERM lets the run go on to its next checkpoint
            os.kill(os.getpid(), getattr(signal, self.signal))


class PoisonAt(L.Callback):
    """Make the weights infinite before training step `step`: the loss turns NaN at once."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *_) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("inf"))


class Bug(L.Callback):
    """Raise an error the project does not foresee when training starts: a bug, to be shown."""

    def on_train_start(self, *args) -> None:
        raise RuntimeError("an unforeseen error")
