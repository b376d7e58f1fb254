"""The LightningModule every task shares: network, optimizer, scheduler, metrics, logging."""

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from lightning_utilities.core.apply_func import apply_to_collection
from matplotlib.figure import Figure
from torch import Tensor, nn
from torch.optim import Optimizer
from torchmetrics import Metric, MetricCollection

from src.data.spec import DataSpec
from src.errors import DivergedError
from src.models.rng import rng_states, set_rng_states
from src.models.stage_metrics import StageMetrics

STAGES = ("train", "val", "test")
LIGHTNING_SCHEDULER_KEYS = ("interval", "frequency", "monitor")


class TaskModule(L.LightningModule, ABC):
    """Trains `net` on data of `spec`.

    Args:
        net: the network, built for the data (`src/engine/building.py`: `build_model`).
        spec: what the data yields.
        optimizer: makes the optimizer from the parameters (`partial(torch.optim.Adam, lr=...)`).
        scheduler: optional; Lightning's `lr_scheduler` config (`interval`, `frequency`,
            `monitor`), its `scheduler` a function that makes the scheduler from the optimizer.
        nonfinite_loss: what a NaN or infinite training loss does: `stop` the run (an error
            naming the step, raised before the weights change) or `skip` the batch.
        compile: `torch.compile` the network (in place: checkpoints keep their plain keys).
        channels_last: keep the network's 4-D weights and inputs channels-last (convnets on
            GPUs, with bf16).

    A task subclasses it with its loss, metrics and predictions, and may draw figures and name
    prediction columns. Its hyperparameters are the plain options only (the engine records the
    whole model config in each checkpoint); checkpoints also carry the random generators' states
    and the training epoch's metrics so far, restored on resume, so a resumed run continues
    exactly as an uninterrupted one (dropout masks, augmentation, epoch values).
    """

    # FLOPs of one training batch, for Lightning's ThroughputMonitor (MFU); set it if you know it
    flops_per_batch: int | None = None

    def __init__(
        self,
        net: nn.Module,
        spec: DataSpec,
        optimizer: Callable[..., Optimizer],
        scheduler: Mapping[str, Any] | None = None,
        nonfinite_loss: Literal["stop", "skip"] = "stop",
        compile: bool = False,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net", "spec", "optimizer", "scheduler"], logger=False)
        self.net, self.spec = net, spec
        self.make_optimizer, self.scheduler_config = optimizer, scheduler
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        if compile:
            self.net.compile()
        # keyed "<stage>_metrics": "train" itself would shadow nn.Module.train
        self.stage_metrics = nn.ModuleDict(
            {f"{stage}_metrics": StageMetrics(self.make_metrics(), f"{stage}/") for stage in STAGES}
        )
        self.example_input_array = spec.example()

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
        return value_columns(self.predictions(outputs))

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
        if self.hparams.channels_last and x.dim() == 4 and x.is_floating_point():
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor] | None:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:
        return self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:
        return self._step(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        """The network's outputs on a batch of inputs (alone, or with targets)."""
        return self(self.spec.inputs(batch))

    def _step(self, batch: Any, stage: str) -> dict[str, Tensor] | None:
        """Loss and predictions of one batch, kept for the stage's metrics; returns the loss and,
        for callbacks (figures), the predictions (None: a training batch skipped for its
        non-finite loss). Every `trainer.log_every_n_steps` training steps also logs
        `train/<name>_step`, over the steps since the last such log."""
        inputs, targets = self.spec.split(batch)
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
        # every rank's generators and metric sums (of its own samples): each rank saves a
        # checkpoint (Lightning calls this on all), rank 0 writes it
        states = {
            "rng": rng_states(),
            "train_metrics": self.stage_metrics["train_metrics"].states(),
        }
        checkpoint["rank_states"] = every_rank(states, self.trainer.world_size)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        ranks = checkpoint.get("rank_states", [])
        if "train_metric_states" in checkpoint:  # a checkpoint of an earlier version: one process
            ranks = [
                {
                    "rng": checkpoint["rng_states"],
                    "train_metrics": checkpoint["train_metric_states"],
                }
            ]
        if len(ranks) != self.trainer.world_size:  # another number of processes: fresh states
            return
        states = ranks[self.trainer.global_rank]
        set_rng_states(states["rng"])
        self.stage_metrics["train_metrics"].load_states(states["train_metrics"])

    def configure_optimizers(self) -> Any:
        optimizer = self.make_optimizer(self.parameters())
        if not self.scheduler_config:
            return optimizer
        scheduler = dict(self.scheduler_config)
        scheduler["scheduler"] = scheduler["scheduler"](optimizer)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


def value_columns(outputs: Tensor) -> tuple[list[str], list[list]]:
    """The header and a row per sample of its output values, flattened: `prediction`, or
    `prediction_<i>` for several."""
    values = outputs.flatten(1).tolist()
    width = len(values[0])
    return (["prediction"] if width == 1 else [f"prediction_{i}" for i in range(width)]), values


def every_rank(value: Any, world_size: int) -> list[Any]:
    """`value` of each process, by rank, its tensors on the CPU (one process: `[value]`)."""
    value = apply_to_collection(value, Tensor, Tensor.cpu)
    if world_size == 1:
        return [value]
    gathered: list[Any] = [None] * world_size
    torch.distributed.all_gather_object(gathered, value)
    return gathered
