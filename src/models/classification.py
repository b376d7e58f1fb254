"""Classification: cross-entropy over class logits, or binary cross-entropy over one logit."""

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from src.models.plots import decision_boundary, image_grid
from src.models.task_module import TaskModule


class ConfusionMatrix(MulticlassConfusionMatrix):
    """torchmetrics' confusion matrix, drawn with the classes' names when the data has them."""

    def __init__(self, num_classes: int, classes: Sequence[str] = ()) -> None:
        super().__init__(num_classes)
        self.classes = list(classes) or None

    def plot(self, *args: Any, **kwargs: Any) -> Any:
        return super().plot(*args, **{"labels": self.classes, **kwargs})


class ClassificationModule(TaskModule):
    """Trains classifiers; a network with one output unit is a binary (logistic) classifier.

    Pictures: the confusion matrix; over 2-D points, the data coloured by class over the learned
    decision boundary; for images, a grid of them with predicted and true labels.
    """

    # images in the grid of predictions
    grid_size = 32

    def make_metrics(self) -> MetricCollection:
        # the loss has checked the targets; checking them again costs a GPU sync per step
        accuracy = MulticlassAccuracy(self.spec.num_outputs, average="micro", validate_args=False)
        return MetricCollection({"acc": accuracy})

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        if outputs.shape[-1] == 1:
            return F.binary_cross_entropy_with_logits(outputs.squeeze(-1), targets.float())
        return F.cross_entropy(outputs, targets)

    def predictions(self, outputs: Tensor) -> Tensor:
        if outputs.shape[-1] == 1:
            return (outputs.squeeze(-1) > 0).long()
        return outputs.argmax(-1)

    def probabilities(self, outputs: Tensor) -> Tensor:
        """Each class's probability: softmax over logits; [1 - p, p], p = sigmoid, for one logit."""
        if outputs.shape[-1] == 1:
            positive = torch.sigmoid(outputs)
            return torch.cat([1 - positive, positive], dim=-1)
        return outputs.softmax(dim=-1)

    def prediction_columns(self, outputs: Tensor) -> tuple[list[str], list[list]]:
        """The predicted class (its name, where the data names its classes), then each class's
        probability."""
        probabilities = self.probabilities(outputs)
        names = self.spec.classes or range(probabilities.shape[1])
        header = ["prediction", *(f"prob_{name}" for name in names)]
        labels = [names[k] for k in self.predictions(outputs).tolist()]
        rows = zip(labels, probabilities.tolist(), strict=True)
        return header, [[label, *p] for label, p in rows]

    def figure_metrics(self) -> dict[str, Metric]:
        return {"confusion_matrix": ConfusionMatrix(self.spec.num_outputs, self.spec.classes)}

    def figures(
        self, inputs: Tensor, predictions: Tensor, targets: Tensor, stage: str
    ) -> dict[str, Figure]:
        if self.spec.kind == "vector" and self.spec.input_shape == (2,):
            accuracy = (predictions == targets).float().mean().item()
            title = f"epoch {self.current_epoch}: accuracy {accuracy:.1%} on {stage}"

            def regions(points: Tensor) -> Tensor:
                return self.predictions(self(points.to(self.device))).cpu()

            return {"decision_boundary": decision_boundary(regions, inputs, targets, title)}
        if self.spec.kind == "image":
            n = self.grid_size
            grid = image_grid(inputs[:n], predictions[:n], targets[:n], self.spec.classes)
            return {"predictions": grid}
        return {}
