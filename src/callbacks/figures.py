"""The task's pictures, drawn during validation and at test end, for any active loggers."""

from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from matplotlib.figure import Figure
from torch import Tensor
from torchmetrics.classification import MulticlassConfusionMatrix

from src.models.base import TaskModule
from src.utils.figures import (
    decision_boundary,
    fitted_line,
    image_grid,
    log_figure,
    sequence_curves,
)


class TaskFigures(L.Callback):
    """Pictures of the model at work, from the first `num_samples` samples of a stage.

    Drawn after the validation of every `every_n_epochs`-th epoch (`val/...`, one PNG per epoch;
    not in the sanity check) and after the test (`test/...`):

    - classification: a confusion matrix (over the whole stage); for 2-D points the data
      coloured by class over the learned decision boundary, accuracy in the title; for images
      a grid of the first `num_images` with predicted and true labels;
    - sequence regression: input, target and predicted curves of a few sequences;
    - 1-D regression (x -> y): the points and the learned line, whose slope and intercept (the
      prediction's change from x=0 to 1, and its value at 0) are printed at test end.
    """

    def __init__(self, every_n_epochs: int = 5, num_samples: int = 256, num_images: int = 32):
        self.every_n_epochs = every_n_epochs
        self.num_samples = num_samples
        self.num_images = num_images
        self.stage: str | None = None

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: TaskModule) -> None:
        due = (trainer.current_epoch + 1) % self.every_n_epochs == 0
        self._start("val" if due and not trainer.sanity_checking else None, pl_module)

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: TaskModule) -> None:
        self._start("test", pl_module)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, *args: Any) -> None:
        self._collect(outputs, batch)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, *args: Any) -> None:
        self._collect(outputs, batch)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: TaskModule) -> None:
        self._draw(trainer, pl_module)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: TaskModule) -> None:
        self._draw(trainer, pl_module)

    def _start(self, stage: str | None, pl_module: TaskModule) -> None:
        self.stage, self.samples, self.confusion = stage, [], None
        if stage and pl_module.spec.task == "classification":
            num_classes = pl_module.spec.num_outputs
            self.confusion = MulticlassConfusionMatrix(num_classes).to(pl_module.device)

    def _collect(self, outputs: dict[str, Tensor], batch: tuple[Tensor, Tensor]) -> None:
        if self.stage is None:
            return
        inputs, targets = batch
        if self.confusion is not None:
            self.confusion.update(outputs["predictions"], targets)
        if sum(len(x) for x, _, _ in self.samples) < self.num_samples:
            self.samples.append((inputs.cpu(), outputs["predictions"].cpu(), targets.cpu()))

    def _draw(self, trainer: L.Trainer, pl_module: TaskModule) -> None:
        stage = self.stage
        if stage is None or not self.samples:
            return
        inputs, predictions, targets = (
            torch.cat(parts)[: self.num_samples] for parts in zip(*self.samples, strict=True)
        )
        spec = pl_module.spec

        def log(name: str, figure: Figure) -> None:
            # validation pictures keep one PNG per epoch; the dashboards get a step slider
            epoch = f"_epoch{trainer.current_epoch:03d}" if stage == "val" else ""
            log_figure(trainer, f"{stage}/{name}", figure, f"{stage}_{name}{epoch}")

        def predict(x: Tensor) -> Tensor:
            with torch.no_grad():
                return pl_module.predictions(pl_module(x.to(pl_module.device))).cpu()

        if self.confusion is not None:
            figure, _ = self.confusion.plot()  # computes, so every rank takes part in the sync
            log("confusion_matrix", figure)
            if spec.input_shape == (2,):
                accuracy = (predictions == targets).float().mean().item()
                title = f"epoch {trainer.current_epoch}: accuracy {accuracy:.1%} on {stage}"
                log("decision_boundary", decision_boundary(predict, inputs, targets, title))
            elif spec.kind == "image":
                n = self.num_images
                log("predictions", image_grid(inputs[:n], predictions[:n], targets[:n]))
        elif spec.kind == "sequence":
            log("sequences", sequence_curves(inputs, targets, predictions))
        elif spec.input_shape == (1,) and spec.num_outputs == 1:
            at_0, at_1 = predict(inputs.new_tensor([[0.0], [1.0]])).flatten().tolist()
            slope, intercept = at_1 - at_0, at_0
            if stage == "test":
                rank_zero_info(f"Learned line: y = {slope:.4f} x + {intercept:.4f}")
            log("fitted_line", fitted_line(inputs, targets, slope, intercept))
        self.stage = None
