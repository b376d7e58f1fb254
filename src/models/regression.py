"""Regression: mean squared error, with MSE, MAE and R2 over every predicted value."""

import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, R2Score

from src.models.base import TaskModule


class RegressionModule(TaskModule):
    """Trains regressors, per sample (vectors) or per step (sequences); metrics see every value."""

    def make_metrics(self) -> MetricCollection:
        return MetricCollection(
            {"mse": MeanSquaredError(), "mae": MeanAbsoluteError(), "r2": R2Score()}
        )

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return F.mse_loss(outputs, targets)

    def predictions(self, outputs: Tensor) -> Tensor:
        return outputs
