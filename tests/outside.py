"""Classes from a module the project's configuration does not trust (configs/trusted.yaml)."""

import lightning as L
import torch
from torch import Tensor, nn


class Tiny(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_outputs: int) -> None:
        super().__init__()
        self.linear = nn.Linear(input_shape[0], num_outputs)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x)


class Bare(L.LightningModule):
    """A training module with a training step and nothing else: no validation, test step or
    forward, and no network."""

    def __init__(self, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(input_shape))

    def training_step(self, batch: tuple[Tensor, Tensor], index: int) -> Tensor:
        return ((batch[0] - self.weight) ** 2).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)
