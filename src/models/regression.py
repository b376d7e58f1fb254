"""Regression: mean squared error, with MSE, MAE and R2 over every predicted value."""

import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info
from matplotlib.figure import Figure
from torch import Tensor
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, R2Score

from src.models.plots import fitted_line, sequence_curves
from src.models.task_module import TaskModule


class RegressionModule(TaskModule):
    """Trains regressors, per sample (vectors) or per step (sequences); metrics see every value.

    Pictures: input, target and predicted curves of a few sequences; for 1-D inputs and outputs
    (x -> y), the points and the learned line, whose slope and intercept (the prediction's
    change from x=0 to 1, and its value at 0) are printed after the test.
    """

    def make_metrics(self) -> MetricCollection:
        return MetricCollection(
            {"mse": MeanSquaredError(), "mae": MeanAbsoluteError(), "r2": R2Score()}
        )

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return F.mse_loss(outputs, targets)

    def predictions(self, outputs: Tensor) -> Tensor:
        return outputs

    def metric_inputs(self, predictions: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """Every predicted value, of every sample and step, as one."""
        return predictions.flatten(), targets.flatten()

    def figures(
        self, inputs: Tensor, predictions: Tensor, targets: Tensor, stage: str
    ) -> dict[str, Figure]:
        if self.spec.kind == "sequence":
            return {"sequences": sequence_curves(inputs, targets, predictions)}
        if self.spec.input_shape == (1,) and self.spec.num_outputs == 1:
            at_0, at_1 = self(inputs.new_tensor([[0.0], [1.0]]).to(self.device)).flatten().tolist()
            slope, intercept = at_1 - at_0, at_0
            if stage == "test":
                rank_zero_info(f"Learned line: y = {slope:.4f} x + {intercept:.4f}")
            return {"fitted_line": fitted_line(inputs, targets, slope, intercept)}
        return {}
