"""The task's pictures, drawn during validation and at test end, for any active loggers."""

from pathlib import Path
from typing import Any

import lightning as L
import matplotlib.pyplot as plt
import torch
from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger, WandbLogger
from matplotlib.figure import Figure
from torch import Tensor

from src.models.task_module import TaskModule


class TaskFigures(L.Callback):
    """Pictures of the model at work, drawn by its task module: after the validation of every
    `every_n_epochs`-th epoch (`val/<name>`, one PNG per epoch; not in the sanity check) and
    after the test (`test/<name>`).

    The module's `figure_metrics` (a confusion matrix) see the whole stage; its `figures` (the
    decision boundary over 2-D points, a grid of images, sequence curves, a fitted line) the
    first `num_samples` samples; a module that is not a `TaskModule` draws none. Each picture
    goes to TensorBoard, W&B and MLflow when they run, and is always saved as
    `figures/<stage>_<name>[_epochNNN].png` in the run directory.
    """

    def __init__(self, every_n_epochs: int = 5, num_samples: int = 256) -> None:
        self.every_n_epochs, self.num_samples = every_n_epochs, num_samples
        self.stage: str | None = None

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: TaskModule) -> None:
        due = (trainer.current_epoch + 1) % self.every_n_epochs == 0
        self._start("val" if due and not trainer.sanity_checking else None, pl_module)

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: TaskModule) -> None:
        self._start("test", pl_module)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, *args: Any) -> None:
        self._collect(pl_module, outputs, batch)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, *args: Any) -> None:
        self._collect(pl_module, outputs, batch)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: TaskModule) -> None:
        self._draw(trainer, pl_module)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: TaskModule) -> None:
        self._draw(trainer, pl_module)

    def _start(self, stage: str | None, pl_module: L.LightningModule) -> None:
        self.stage, self.samples = stage, []
        if not isinstance(pl_module, TaskModule):
            self.stage = None
            return
        self.metrics = {n: m.to(pl_module.device) for n, m in pl_module.figure_metrics().items()}

    def _collect(self, pl_module: TaskModule, outputs: dict[str, Tensor], batch: Any) -> None:
        if self.stage is None:
            return
        inputs, targets = pl_module.spec.split(batch)
        for metric in self.metrics.values():
            metric.update(outputs["predictions"], targets)
        if sum(len(x) for x, _, _ in self.samples) < self.num_samples:
            self.samples.append((inputs.cpu(), outputs["predictions"].cpu(), targets.cpu()))

    def _draw(self, trainer: L.Trainer, pl_module: TaskModule) -> None:
        stage = self.stage
        if stage is None or not self.samples:
            return
        inputs, predictions, targets = (
            torch.cat(parts)[: self.num_samples] for parts in zip(*self.samples, strict=True)
        )
        # plotting computes a metric: every rank takes part in its sync
        figures = {name: metric.plot()[0] for name, metric in self.metrics.items()}
        with torch.no_grad():
            figures |= pl_module.figures(inputs, predictions, targets, stage)
        # validation pictures keep one PNG per epoch; the dashboards get a step slider
        epoch = f"_epoch{trainer.current_epoch:03d}" if stage == "val" else ""
        for name, figure in figures.items():
            log_figure(trainer, f"{stage}/{name}", figure, f"{stage}_{name}{epoch}")
        self.stage = None


def log_figure(trainer: L.Trainer, name: str, figure: Figure, file_name: str) -> None:
    """Log `figure` as image `name` to TensorBoard, W&B and MLflow (whichever run) and save it as
    `<run dir>/figures/<file_name>.png`, on global rank zero; close it on every rank."""
    if trainer.is_global_zero:
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_figure(name, figure, trainer.global_step, close=False)
            elif isinstance(logger, WandbLogger):
                logger.log_image(key=name, images=[figure], step=trainer.global_step)
            elif isinstance(logger, MLFlowLogger):
                logger.experiment.log_figure(logger.run_id, figure, f"figures/{file_name}.png")
        path = Path(trainer.default_root_dir) / "figures" / f"{file_name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100)
    plt.close(figure)
