"""Pictures of a model's test results, for whichever loggers are active."""

from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor
from torchmetrics.classification import MulticlassConfusionMatrix

from src.models.base import TaskModule
from src.utils.figures import fitted_line, image_grid, log_figure, sequence_curves


class TestFigures(L.Callback):
    """At test end, from the first `num_samples` test samples:

    - classification: a confusion matrix (over the whole test set) and, for images, a grid of
      the first `num_images` with predicted and true labels;
    - sequence regression: input, target and predicted curves of a few sequences;
    - 1-D regression (x -> y): the points and the learned line, whose slope and intercept
      (the prediction's change from x=0 to 1, and its value at 0) are also printed.
    """

    def __init__(self, num_samples: int = 256, num_images: int = 32) -> None:
        self.num_samples, self.num_images = num_samples, num_images

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: TaskModule) -> None:
        self.samples: list[tuple[Tensor, Tensor, Tensor]] = []
        self.confusion = None
        if pl_module.spec.task == "classification":
            num_classes = pl_module.spec.num_outputs
            self.confusion = MulticlassConfusionMatrix(num_classes).to(pl_module.device)

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: TaskModule,
        outputs: Any,
        batch: tuple[Tensor, Tensor],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        inputs, targets = batch
        if self.confusion is not None:
            self.confusion.update(outputs["predictions"], targets)
        if sum(len(x) for x, _, _ in self.samples) < self.num_samples:
            self.samples.append((inputs.cpu(), outputs["predictions"].cpu(), targets.cpu()))

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: TaskModule) -> None:
        if not self.samples:
            return
        inputs, predictions, targets = (
            torch.cat(parts) for parts in zip(*self.samples, strict=True)
        )
        spec = pl_module.spec
        if self.confusion is not None:
            figure, _ = self.confusion.plot()  # computes, so every rank takes part in the sync
            log_figure(trainer, "test/confusion_matrix", figure)
            if spec.kind == "image":
                n = self.num_images
                log_figure(
                    trainer,
                    "test/predictions",
                    image_grid(inputs[:n], predictions[:n], targets[:n]),
                )
        elif spec.kind == "sequence":
            log_figure(trainer, "test/sequences", sequence_curves(inputs, targets, predictions))
        elif spec.input_shape == (1,) and spec.num_outputs == 1:
            with torch.no_grad():
                at_0, at_1 = (
                    pl_module(inputs.new_tensor([[0.0], [1.0]]).to(pl_module.device))
                    .flatten()
                    .tolist()
                )
            slope, intercept = at_1 - at_0, at_0
            rank_zero_info(f"Learned line: y = {slope:.4f} x + {intercept:.4f}")
            log_figure(trainer, "test/fitted_line", fitted_line(inputs, targets, slope, intercept))
