"""Pictures of a classifier's test results, for whichever loggers are active."""

from typing import Any

import lightning as L
from torch import Tensor
from torchmetrics.classification import MulticlassConfusionMatrix

from src.models.base import TaskModule
from src.utils.figures import image_grid, log_figure


class TestFigures(L.Callback):
    """At test end: a confusion matrix and, for images, a grid of the first test images with
    their predicted and true labels. Does nothing for regression."""

    def __init__(self, num_images: int = 32) -> None:
        self.num_images = num_images

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: TaskModule) -> None:
        self.active = pl_module.spec.task == "classification"
        if self.active:
            num_classes = pl_module.spec.num_outputs
            self.confusion = MulticlassConfusionMatrix(num_classes).to(pl_module.device)
            self.samples: tuple[Tensor, Tensor, Tensor] | None = None

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: TaskModule,
        outputs: Any,
        batch: tuple[Tensor, Tensor],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not self.active:
            return
        inputs, targets = batch
        self.confusion.update(outputs["predictions"], targets)
        if self.samples is None:
            n = self.num_images
            self.samples = (inputs[:n].cpu(), outputs["predictions"][:n].cpu(), targets[:n].cpu())

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: TaskModule) -> None:
        if not self.active:
            return
        figure, _ = self.confusion.plot()  # computes, so every rank takes part in the sync
        log_figure(trainer, "test/confusion_matrix", figure)
        if pl_module.spec.kind == "image" and self.samples is not None:
            log_figure(trainer, "test/predictions", image_grid(*self.samples))
