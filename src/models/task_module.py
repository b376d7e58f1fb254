"""The LightningModule every task shares: network, optimizer, scheduler, metrics, logging."""

from abc import ABC, abstractmethod
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from matplotlib.figure import Figure
from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection

from src.data.spec import DataSpec
from src.errors import ConfigError, DivergedError
from src.models.rng import rng_states, set_rng_states
from src.models.stage_metrics import StageMetrics
from src.slots import NETWORK, OPTIMIZER, SCHEDULER, build, class_and_arguments

STAGES = ("train", "val", "test")
LIGHTNING_SCHEDULER_KEYS = ("interval", "frequency", "monitor")


class TaskModule(L.LightningModule, ABC):
    """Trains the network described by `net` on data of `spec`.

    Every argument is a plain config value (`_target_` dicts for the network, optimizer and
    scheduler), saved as hyperparameters, so a checkpoint rebuilds its module on its own and
    loads with `torch.load(weights_only=True)`.

    Args:
        net: `_target_` config of a `Network`; `input_shape` and `num_outputs` come from `spec`.
        spec: `DataSpec.to_dict()` of the data the network is built for.
        optimizer: `_target_` config of a `torch.optim` optimizer, without `params`.
        scheduler: optional `_target_` config of an LR scheduler, without `optimizer`; the keys
            `interval`, `frequency` and `monitor` go to Lightning.
        nonfinite_loss: what a NaN or infinite training loss does: `stop` the run (an error
            naming the step, raised before the weights change) or `skip` the batch.
        compile: `torch.compile` the network (in place: checkpoints keep their plain keys).
        channels_last: keep the network's 4-D weights and inputs channels-last (convnets on
            GPUs, with bf16).

    A task subclasses it with its loss, metrics and predictions, and may draw figures and name
    prediction columns. Checkpoints also carry the random generators' states and the training
    epoch's metrics so far, restored on resume, so a resumed run continues exactly as an
    uninterrupted one (dropout masks, augmentation, epoch values).
    """

    # FLOPs of one training batch, for Lightning's ThroughputMonitor (MFU); set it if you know it
    flops_per_batch: int | None = None

    def __init__(
        self,
        net: dict[str, Any],
        spec: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None = None,
        nonfinite_loss: Literal["stop", "skip"] = "stop",
        compile: bool = False,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if nonfinite_loss not in ("stop", "skip"):
            raise ConfigError(
                f"model.nonfinite_loss must be 'stop' or 'skip', got {nonfinite_loss!r}"
            )
        # the entry point logs the whole resolved config instead (src/run/trainer.py)
        self.save_hyperparameters(logger=False)
        self.spec = DataSpec.from_dict(spec)
        # built when training starts; checked now
        class_and_arguments(optimizer, OPTIMIZER, given=["params"])
        if scheduler:
            class_and_arguments(_scheduler_args(scheduler), SCHEDULER, given=["optimizer"])
        self.net = build(
            net, NETWORK, input_shape=self.spec.input_shape, num_outputs=self.spec.num_outputs
        )
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        if compile:
            self.net.compile()
        # keyed "<stage>_metrics": "train" itself would shadow nn.Module.train
        self.stage_metrics = nn.ModuleDict(
            {f"{stage}_metrics": StageMetrics(self.make_metrics(), f"{stage}/") for stage in STAGES}
        )
        self.example_input_array = torch.zeros(1, *self.spec.input_shape)

    @abstractmethod
    def make_metrics(self) -> MetricCollection:
        """The task's torchmetrics, updated with `(predictions(outputs), targets)`."""

    @abstractmethod
    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor: ...

    @abstractmethod
    def predictions(self, outputs: Tensor) -> Tensor:
        """Network outputs in the form the metrics take (class indices, values)."""

    def metric_inputs(self, predictions: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """A batch's predictions and targets as the metrics take them: unchanged by default."""
        return predictions, targets

    def prediction_columns(self, outputs: Tensor) -> tuple[list[str], list[list]]:
        """The header and a row of values per sample, for a table of predictions: one column per
        predicted value by default."""
        values = self.predictions(outputs).flatten(1).tolist()
        width = len(values[0])
        return (["prediction"] if width == 1 else [f"prediction_{i}" for i in range(width)]), values

    def figure_metrics(self) -> dict[str, Metric]:
        """Metrics over a whole stage that draw themselves (`plot`) for the figures callback,
        updated with `(predictions, targets)`; none by default."""
        return {}

    def figures(
        self, inputs: Tensor, predictions: Tensor, targets: Tensor, stage: str
    ) -> dict[str, Figure]:
        """Pictures of the model at work on the first samples of `stage` (on the CPU), by
        name; none by default."""
        return {}

    def forward(self, x: Tensor) -> Tensor:
        if self.hparams.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    def training_step(
        self, batch: tuple[Tensor, Tensor], batch_idx: int
    ) -> dict[str, Tensor] | None:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        return self._step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        return self._step(batch, "test")

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        """The network's outputs on a batch of inputs (no targets)."""
        return self(batch[0])

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> dict[str, Tensor] | None:
        """Loss and predictions of one batch, kept for the stage's metrics; returns the loss and,
        for callbacks (figures), the predictions (None: a training batch skipped for its
        non-finite loss). Every `trainer.log_every_n_steps` training steps also logs
        `train/<name>_step`, over the steps since the last such log."""
        inputs, targets = batch
        outputs = self(inputs)
        loss = self.loss(outputs, targets)
        if stage == "train" and not torch.isfinite(loss):
            return self._nonfinite(loss)
        predictions = self.predictions(outputs.detach())
        metrics = self.stage_metrics[f"{stage}_metrics"]
        metrics.add(loss, len(inputs), *self.metric_inputs(predictions, targets))
        every = self.trainer.log_every_n_steps
        if stage == "train" and (self.global_step + 1) % every == 0:
            values = metrics.window()
            self.log_dict({f"{name}_step": value for name, value in values.items()}, prog_bar=True)
        elif len(metrics.kept) >= every:
            metrics.update()
        return {"loss": loss, "predictions": predictions}

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def _log_epoch(self, stage: str) -> None:
        """Log the stage's mean loss and metrics over the epoch; nothing when no batch came
        since (the end of an epoch that a resumed run repeats: it was logged before the
        checkpoint)."""
        if values := self.stage_metrics[f"{stage}_metrics"].epoch():
            # values already agree across ranks; sync_dist only tells Lightning so
            self.log_dict(values, sync_dist=True)

    def _nonfinite(self, loss: Tensor) -> None:
        """Skip the batch (None: Lightning makes no optimizer step) or stop the run."""
        where = f"training step {self.global_step} (epoch {self.current_epoch})"
        if self.hparams.nonfinite_loss == "skip":
            rank_zero_warn(f"train/loss is {loss.item()} at {where}: batch skipped")
            return None
        raise DivergedError(
            f"train/loss is {loss.item()} at {where}; stopped before the weights changed, and "
            f"the checkpoints keep the last good ones: lower model.optimizer.lr, or set "
            f"model.nonfinite_loss=skip to skip such batches"
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["task_module"] = f"{type(self).__module__}.{type(self).__qualname__}"
        checkpoint["rng_states"] = rng_states()
        checkpoint["train_metric_states"] = self.stage_metrics["train_metrics"].states()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "rng_states" in checkpoint:
            set_rng_states(checkpoint["rng_states"])
        # under DDP each rank's metrics hold its own samples, and rank 0's alone are saved
        if "train_metric_states" in checkpoint and self.trainer.world_size == 1:
            self.stage_metrics["train_metrics"].load_states(checkpoint["train_metric_states"])

    def configure_optimizers(self) -> Any:
        optimizer = build(self.hparams.optimizer, OPTIMIZER, params=self.parameters())
        if not self.hparams.scheduler:
            return optimizer
        config = dict(self.hparams.scheduler)
        lightning_config = {k: config[k] for k in LIGHTNING_SCHEDULER_KEYS if k in config}
        scheduler = build(_scheduler_args(config), SCHEDULER, optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": lightning_config | {"scheduler": scheduler}}


def _scheduler_args(config: dict[str, Any]) -> dict[str, Any]:
    """A scheduler config without the keys that go to Lightning."""
    return {k: v for k, v in config.items() if k not in LIGHTNING_SCHEDULER_KEYS}
