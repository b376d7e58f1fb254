"""The LightningModule every task shares: network, optimizer, scheduler, metrics, logging."""

from abc import ABC, abstractmethod
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn
from torchmetrics import MeanMetric, Metric, MetricCollection

from src.data.spec import DataSpec
from src.errors import ConfigError, DivergedError
from src.slots import NETWORK, OPTIMIZER, SCHEDULER, build, target_class
from src.utils.rng import rng_states, set_rng_states

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
            `interval`, `frequency` and `monitor` go to Lightning (defaults: epoch, 1, val/loss).
        nonfinite_loss: what a NaN or infinite training loss does: `stop` the run (an error
            naming the step, raised before the weights change) or `skip` the batch.
        compile: `torch.compile` the network (in place: checkpoints keep their plain keys).
        channels_last: keep the network's 4-D weights and inputs channels-last (convnets on
            GPUs, with bf16).

    Checkpoints also carry the random generators' states, restored on resume, so a resumed run
    continues exactly as an uninterrupted one (dropout masks, augmentation).
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
        # the entry point logs the whole resolved config instead (src/utils/run.py)
        self.save_hyperparameters(logger=False)
        self.spec = DataSpec.from_dict(spec)
        target_class(optimizer, OPTIMIZER)  # built when training starts; checked now
        if scheduler:
            target_class(_scheduler_args(scheduler), SCHEDULER)
        self.net = build(
            net, NETWORK, input_shape=self.spec.input_shape, num_outputs=self.spec.num_outputs
        )
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        if compile:
            self.net.compile()
        # keyed "<stage>_metrics": "train" itself would shadow nn.Module.train
        self.metrics = nn.ModuleDict(
            {f"{stage}_metrics": self.make_metrics().clone(prefix=f"{stage}/") for stage in STAGES}
        )
        self.mean_losses = nn.ModuleDict({f"{stage}_loss": MeanMetric() for stage in STAGES})
        # (loss, batch size, predictions, targets) of the batches the metrics have not seen yet
        self._pending: dict[str, list[tuple[Tensor, int, Tensor, Tensor]]] = {s: [] for s in STAGES}
        self.example_input_array = torch.zeros(1, *self.spec.input_shape)

    @abstractmethod
    def make_metrics(self) -> MetricCollection:
        """The task's torchmetrics, updated with `(predictions(outputs), targets)`."""

    @abstractmethod
    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor: ...

    @abstractmethod
    def predictions(self, outputs: Tensor) -> Tensor:
        """Network outputs in the form the metrics take (class indices, values)."""

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

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> dict[str, Tensor] | None:
        """Loss and predictions of one batch, kept for the stage's metrics (every
        `trainer.log_every_n_steps` training steps also log `train/<name>_step`, over the steps
        since the last such log); returns the loss and, for callbacks (figures), the predictions
        (None: a training batch skipped for its non-finite loss)."""
        inputs, targets = batch
        outputs = self(inputs)
        loss = self.loss(outputs, targets)
        if stage == "train" and not torch.isfinite(loss):
            return self._nonfinite(loss)
        predictions = self.predictions(outputs.detach())
        pending = self._pending[stage]
        pending.append((loss.detach(), len(inputs), predictions.flatten(), targets.flatten()))
        every = self.trainer.log_every_n_steps
        if stage == "train" and (self.global_step + 1) % every == 0:
            values = self._update_metrics(stage, window_values=True)
            self.log_dict({f"{name}_step": value for name, value in values.items()}, prog_bar=True)
        elif len(pending) >= every:
            self._update_metrics(stage)
        return {"loss": loss, "predictions": predictions}

    def _update_metrics(self, stage: str, window_values: bool = False) -> dict[str, Tensor]:
        """Update the stage's loss mean and metrics with the batches kept since the last update,
        in one call each: a torchmetrics call costs about 0.3 ms on a CPU, more than a small
        network's training step. With `window_values`, return the values of those batches."""
        losses, sizes, predictions, targets = zip(*self._pending[stage], strict=True)
        self._pending[stage].clear()
        losses = torch.stack(losses)
        weights = torch.tensor(sizes, dtype=losses.dtype, device=losses.device)
        self.mean_losses[f"{stage}_loss"].update(losses, weight=weights)
        metrics = self.metrics[f"{stage}_metrics"]
        predictions, targets = torch.cat(predictions), torch.cat(targets)
        if not window_values:
            metrics.update(predictions, targets)
            return {}
        # the metrics' forward updates them and gives the window's own values
        loss = (losses * weights).sum() / weights.sum()
        return {f"{stage}/loss": loss} | metrics(predictions, targets)

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def _log_epoch(self, stage: str) -> None:
        """Log the stage's mean loss and metrics over the epoch (every rank's samples: the
        torchmetrics synchronise), then start them afresh; nothing when no batch came since
        (the end of an epoch that a resumed run repeats: it was logged before the checkpoint).

        Computed here, and step values logged only when the loggers take them: each Lightning
        `log` call costs about a millisecond on a CPU (it moves its result to the device).
        """
        if self._pending[stage]:
            self._update_metrics(stage)
        metrics, loss = self.metrics[f"{stage}_metrics"], self.mean_losses[f"{stage}_loss"]
        if loss.update_count == 0:
            return
        # values already agree across ranks; sync_dist only tells Lightning so
        self.log_dict({f"{stage}/loss": loss.compute(), **metrics.compute()}, sync_dist=True)
        metrics.reset()
        loss.reset()

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
        checkpoint["rng_states"] = rng_states()
        checkpoint["train_metric_states"] = self._train_metric_states()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "rng_states" in checkpoint:
            set_rng_states(checkpoint["rng_states"])
        # under DDP each rank's metrics hold its own samples, and rank 0's alone are saved
        if "train_metric_states" in checkpoint and self.trainer.world_size == 1:
            self._train_metrics().load_state_dict(checkpoint["train_metric_states"], strict=False)

    def _train_metrics(self) -> nn.ModuleList:
        return nn.ModuleList([self.mean_losses["train_loss"], self.metrics["train_metrics"]])

    def _train_metric_states(self) -> dict[str, Tensor]:
        """The training epoch's loss mean and metrics so far, for a run resumed mid-epoch to log
        them over the whole epoch."""
        if self._pending["train"]:
            self._update_metrics("train")
        metrics = self._train_metrics()
        for metric in metrics.modules():
            if isinstance(metric, Metric):
                metric.persistent(True)
        try:
            return metrics.state_dict()
        finally:
            for metric in metrics.modules():
                if isinstance(metric, Metric):
                    metric.persistent(False)

    def configure_optimizers(self) -> Any:
        optimizer = build(self.hparams.optimizer, OPTIMIZER, params=self.parameters())
        if not self.hparams.scheduler:
            return optimizer
        config = dict(self.hparams.scheduler)
        lightning_config = {"monitor": "val/loss"}
        lightning_config |= {k: config[k] for k in LIGHTNING_SCHEDULER_KEYS if k in config}
        scheduler = build(_scheduler_args(config), SCHEDULER, optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": lightning_config | {"scheduler": scheduler}}


def _scheduler_args(config: dict[str, Any]) -> dict[str, Any]:
    """A scheduler config without the keys that go to Lightning."""
    return {k: v for k, v in config.items() if k not in LIGHTNING_SCHEDULER_KEYS}
