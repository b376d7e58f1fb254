"""A checkpoint saved when training stops on a failure, for `resume=` to continue from."""

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.trainer.states import TrainerFn


class TrainingExceptionCheckpoint(Checkpoint):
    """Saves `<dirpath>/on_exception.ckpt` when fitting stops on an error, SIGTERM or Ctrl-C
    after at least one training step, and removes it when a run ends normally.

    Not for errors before training (bad data: nothing to resume) or while testing (the weights
    tested are a loaded checkpoint, not where training stopped). Unlike Lightning's
    `OnExceptionCheckpoint`, its presence does not make every fit without a `ckpt_path` resume
    from the newest checkpoint it finds on disk: resuming is asked for (`ckpt_path=`, `resume=`).
    """

    def __init__(self, dirpath: str | Path, filename: str = "on_exception") -> None:
        self.path = Path(dirpath) / f"{filename}.ckpt"

    def on_exception(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.state.fn == TrainerFn.FITTING and trainer.global_step > 0:
            trainer.save_checkpoint(self.path)

    def teardown(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        trainer.strategy.remove_checkpoint(self.path)
