"""Logistic regression: one linear unit whose sigmoid is the probability of class 1."""

import math
from collections.abc import Sequence

from torch import Tensor, nn

from src.data.spec import DataSpec
from src.models.nets.network import Network


class LogisticRegression(Network):
    """One linear unit on the flattened input; returns the logit, shape (batch, 1).

    The sigmoid lives in the loss (`BCEWithLogitsLoss`) for numerical stability; probabilities are
    `torch.sigmoid(logit)`.
    """

    def __init__(self, input_shape: Sequence[int], num_outputs: int) -> None:
        super().__init__(input_shape, num_outputs)
        self.linear = nn.Linear(math.prod(input_shape), 1)

    tasks = ("classification",)

    @classmethod
    def incompatibility(cls, spec: DataSpec) -> str | None:
        if reason := super().incompatibility(spec):
            return reason
        if spec.num_outputs != 2:
            return "logistic regression is a binary classifier: it needs 2 classes"
        return None

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x.flatten(1))
