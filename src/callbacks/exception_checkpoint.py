"""Lightning's on-exception checkpoint, kept to the failures a resume can continue from."""

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import OnExceptionCheckpoint
from lightning.pytorch.trainer.states import TrainerFn


class TrainingExceptionCheckpoint(OnExceptionCheckpoint):
    """Saves `on_exception.ckpt` when fitting stops on an error, SIGTERM or Ctrl-C after at least
    one training step; not for errors before training (bad data: nothing to resume) or while
    testing (the weights tested are a loaded checkpoint, not where training stopped)."""

    def on_exception(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.state.fn == TrainerFn.FITTING and trainer.global_step > 0:
            super().on_exception(trainer, *args, **kwargs)
