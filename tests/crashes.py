"""Callbacks that break a run on cue, as a crash or a diverging optimizer would."""

import os
import signal

import lightning as L
import torch


class KillAt(L.Callback):
    """SIGKILL this process in `hook` once `trainer.global_step` reaches `step`."""

    def __init__(self, step: int, hook: str = "on_train_batch_start") -> None:
        self.step = step
        setattr(self, hook, self._maybe_kill)

    def _maybe_kill(self, trainer: L.Trainer, *args, **kwargs) -> None:
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)


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
