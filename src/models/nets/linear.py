"""Linear regression: one linear layer from the flattened input to the targets."""

import math
from collections.abc import Sequence

from torch import Tensor, nn

from src.models.nets.network import Network


class LinearRegression(Network):
    """y = W x + b; on the `linear` data its weight and bias are the learned slope and intercept."""

    input_kinds = ("vector",)
    tasks = ("regression",)

    def __init__(self, input_shape: Sequence[int], num_outputs: int) -> None:
        super().__init__(input_shape, num_outputs)
        self.linear = nn.Linear(math.prod(input_shape), num_outputs)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x.flatten(1))
