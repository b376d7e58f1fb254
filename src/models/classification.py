"""Classification: cross-entropy over class logits, or binary cross-entropy over one logit."""

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from src.models.base import TaskModule


class ClassificationModule(TaskModule):
    """Trains classifiers; a network with one output unit is a binary (logistic) classifier."""

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
