"""Checkpoints a run can always resume from: written whole, with finite weights, current at the
end of fitting."""

import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn
from omegaconf import DictConfig, ListConfig, OmegaConf

from src.engine.atomic import atomic_write
from src.engine.checkpoint_files import RECORD
from src.errors import ConfigError

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, atomic on any machine, refusing non-finite weights, writing
    checkpoints that say what they were built from and hold plain data only.

    Lightning writes a checkpoint to a temporary file in `$TMPDIR` and moves it into place: across
    filesystems the move is a copy, which a kill or a full disk leaves half done. Here each goes
    through `atomic_write` (a temporary file in the checkpoint's own directory, renamed over it).
    A checkpoint whose weights hold NaN or infinite values is not written, so the files on disk
    keep the last finite weights. Each checkpoint carries `record` (the model and data configs
    and the data's spec) as `built_from`, and of the module's and datamodule's hyperparameters
    only the plain values, so it rebuilds its model from plain data alone and loads with
    `torch.load(weights_only=True)` (a network or a factory passed to a module is left out).
    """

    def __init__(self, record: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.record = record

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        weights = checkpoint.get("state_dict", {}).values()
        if not all(torch.isfinite(w).all() for w in weights if w.is_floating_point()):
            rank_zero_warn(
                f"{path} not saved: the weights hold NaN or infinite values; the checkpoints "
                f"on disk keep the last finite ones"
            )
            return
        if self.record is not None:
            checkpoint[RECORD] = self.record
        for key in ("hyper_parameters", "datamodule_hyper_parameters"):
            if key in checkpoint:
                checkpoint[key] = plain_values(checkpoint[key])
        buffer = io.BytesIO()  # serialised first: a failed write then raises the OS's own error
        torch.save(checkpoint, buffer)
        with atomic_write(path) as file:
            file.write(buffer.getbuffer())


def plain_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of `values` that are plain data (numbers, strings, tensors, and lists and dicts
    of them), OmegaConf containers turned into plain ones."""
    kept = {}
    for key, value in values.items():
        if isinstance(value, DictConfig | ListConfig):
            value = OmegaConf.to_container(value, resolve=True)
        if is_plain(value):
            kept[key] = value
    return kept


def is_plain(value: Any) -> bool:
    """Whether `value` loads with `torch.load(weights_only=True)`."""
    if isinstance(value, dict):
        return all(isinstance(k, str | int) and is_plain(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(is_plain(v) for v in value)
    return value is None or isinstance(value, bool | int | float | str | torch.Tensor)


class LastCheckpoint(Checkpoint):
    """Keeps `<dirpath>/last.ckpt` current to resume from: at the end of each training epoch
    (after its validation), every `every_n_train_steps` training steps within an epoch, and when
    fitting ends, whatever ended it (early stopping, `max_steps` mid-epoch). When fitting stops
    on an error or SIGTERM within an epoch, saves `on_exception.ckpt` (removed when a later fit
    of the run ends normally); a SIGTERM inside a window of accumulated gradients
    stops at the window's end. Not on a KeyboardInterrupt, which may land inside a step (the
    entry point turns a first Ctrl-C into a SIGTERM, which Lightning handles between steps).

    Lightning resumes cleanly from these points: from a checkpoint taken at the last batch of an
    epoch or after its validation, it would skip that epoch's end and the next one's start. The
    plateau schedulers' step that Lightning skips on a resume is taken here. The loggers
    flush before each save, so what was logged up to a checkpoint is on disk with it.
    Fitting without `ckpt_path` never resumes from these files on its own.

    A training loader that cannot save its place in an epoch (no `state_dict`: a plain
    `DataLoader`) would replay or skip batches when resumed mid-epoch; with one, checkpoints are
    taken only at epoch ends (and a resume restarts the epoch it stopped in), as said once when
    training starts.
    """

    def __init__(self, dirpath: str | Path, every_n_train_steps: int = 100) -> None:
        self.dirpath, self.every_n_train_steps = Path(dirpath), every_n_train_steps
        self._saved_step: int | None = None
        self._held_sigterm = False  # a SIGTERM waiting for the end of an accumulation window
        # the plateau schedulers' values for the step that follows an epoch-end checkpoint
        self._plateau_due: dict[int, float] = {}
        self._plateau_resumed: dict[int, float] = {}
        self.mid_epoch = True  # whether to checkpoint within an epoch

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Lightning's SIGTERM handler broadcasts the signal to the other processes from inside the
        # handler, which meets their own collectives mid-way and hangs DDP; the flag alone does,
        # as the training loop broadcasts rank 0's at every step (registered after this hook)
        signals = trainer._signal_connector
        signals._sigterm_notifier_fn = lambda signum, frame: note_sigterm(trainer, signum)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        step_plateau_schedulers(trainer, pl_module, self._plateau_resumed)
        self._plateau_resumed = {}
        loaders = trainer.train_dataloader
        if isinstance(loaders, Mapping):
            loaders = list(loaders.values())
        loaders = loaders if isinstance(loaders, list | tuple) else [loaders]
        self.mid_epoch = all(
            callable(getattr(loader, "state_dict", None))
            and callable(getattr(loader, "load_state_dict", None))
            for loader in loaders
        )
        if not self.mid_epoch:
            kinds = ", ".join(sorted({type(loader).__name__ for loader in loaders}))
            rank_zero_only(log.warning)(
                f"data: {type(trainer.datamodule).__name__}'s training loader ({kinds}) cannot "
                f"save its place in an epoch, so checkpoints are taken at epoch ends only and a "
                f"resume restarts the epoch it stopped in; for exact resume mid-epoch, return "
                f"torchdata's StatefulDataLoader"
            )

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, index: int
    ) -> None:
        every, last_of_epoch = self.every_n_train_steps, index + 1 >= trainer.num_training_batches
        in_window = (index + 1) % trainer.accumulate_grad_batches != 0 and not last_of_epoch
        # A SIGTERM inside a window of accumulated gradients, which no checkpoint holds, takes
        # effect at the window's end (Lightning's signal connector keeps the flag it stops on).
        signals = trainer._signal_connector
        if in_window and signals.received_sigterm:
            signals.received_sigterm, self._held_sigterm = False, True
        elif self._held_sigterm and not in_window:
            signals.received_sigterm, self._held_sigterm = True, False
        if self.mid_epoch and every and trainer.global_step % every == 0 and not last_of_epoch:
            self._save_last(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning steps plateau schedulers after this hook: a resume from this checkpoint does
        # (`on_train_start`), and a resume that began in this epoch does here, as Lightning skips
        # it at the end of the epoch a resume began in (it keeps no metric for them)
        self._plateau_due = plateau_values(trainer)
        self._save_last(trainer)
        self._plateau_due = {}
        if trainer.fit_loop.restarting:
            step_plateau_schedulers(trainer, pl_module, plateau_values(trainer))

    def state_dict(self) -> dict[str, Any]:
        return {"plateau_due": self._plateau_due}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._plateau_resumed = state_dict.get("plateau_due", {})

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save_last(trainer)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, KeyboardInterrupt):
            return
        # before the epoch's first batch, last.ckpt holds this state (and Lightning would resume
        # a checkpoint taken there to an empty epoch under DDP, which stops at its start)
        trained = trainer.fit_loop.epoch_loop.batch_progress.current.completed
        if trainer.state.fn == TrainerFn.FITTING and trained > 0 and self.mid_epoch:
            try:
                trainer.save_checkpoint(self.dirpath / "on_exception.ckpt", weights_only=False)
            except OSError as error:  # a full disk: the run's own error matters more
                rank_zero_warn(f"on_exception.ckpt not saved ({error}); last.ckpt is kept")

    def teardown(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        trainer.strategy.remove_checkpoint(self.dirpath / "on_exception.ckpt")

    def _save_last(self, trainer: L.Trainer) -> None:
        if trainer.fast_dev_run or trainer.global_step in (0, self._saved_step):
            return
        for logger in trainer.loggers:
            logger.save()
        trainer.save_checkpoint(self.dirpath / "last.ckpt", weights_only=False)
        self._saved_step = trainer.global_step


def note_sigterm(trainer: L.Trainer, signum: int) -> None:
    """Lightning's SIGTERM notice without a collective: set the flag the loops stop on, and pass
    the first signal to the processes this one launched."""
    signals = trainer._signal_connector
    if not signals.received_sigterm and trainer.strategy.launcher is not None:
        trainer.strategy.launcher.kill(signum)
    signals.received_sigterm = True


def plateau_values(trainer: L.Trainer) -> dict[int, float]:
    """The values Lightning steps the `ReduceLROnPlateau` schedulers with at this epoch's end,
    by their index in `trainer.lr_scheduler_configs`."""
    values = {}
    for index, config in enumerate(trainer.lr_scheduler_configs):
        due = config.interval == "epoch" and (trainer.current_epoch + 1) % config.frequency == 0
        value = trainer.callback_metrics.get(config.monitor)
        if config.reduce_on_plateau and due and value is not None:
            values[index] = float(value)
    return values


def step_plateau_schedulers(
    trainer: L.Trainer, pl_module: L.LightningModule, values: dict[int, float]
) -> None:
    """Step the plateau schedulers with `values` (`plateau_values`), as Lightning does."""
    for index, value in values.items():
        pl_module.lr_scheduler_step(trainer.lr_scheduler_configs[index].scheduler, value)


class MonitorLogged(L.Callback):
    """Ends training in one sentence at the first validation whose end does not find `monitor`
    logged (a validation metric, or any metric that early stopping reads there), before early
    stopping or the checkpoint callbacks fail on it with a traceback."""

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logged = trainer.callback_metrics
        if trainer.sanity_checking or self.monitor in logged:
            return
        names = ", ".join(sorted(n for n in logged if n.startswith("val"))) or "none"
        raise ConfigError(
            f"monitor={self.monitor} is not logged when validation ends, where early stopping "
            f"and the best checkpoint read it, so the run would have no result; give "
            f"monitor=<a metric validation logs> ({names}), or callbacks.early_stopping=null"
        )
