"""Multi-layer perceptron on flattened inputs: the seed's 2-10-2 net and the two-layer net."""

import math
from collections.abc import Sequence
from itertools import pairwise

from torch import Tensor, nn

from src.data.spec import DataSpec
from src.errors import ConfigError
from src.models.nets.network import Network


class MLP(Network):
    """Flatten, then Linear + ReLU for each hidden size, then Linear to `num_outputs`."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        hidden_sizes: Sequence[int] = (10,),
        dropout: float = 0.0,
    ) -> None:
        super().__init__(input_shape, num_outputs)
        if min(hidden_sizes, default=1) < 1 or not 0 <= dropout < 1:
            raise ConfigError(
                f"model.net.hidden_sizes={list(hidden_sizes)} and model.net.dropout={dropout}: "
                f"widths must be positive and dropout in [0, 1)"
            )
        widths = [math.prod(input_shape), *hidden_sizes]
        layers: list[nn.Module] = [nn.Flatten()]
        for width_in, width_out in pairwise(widths):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(widths[-1], num_outputs))
        self.layers = nn.Sequential(*layers)

    @classmethod
    def incompatibility(cls, spec: DataSpec) -> str | None:
        if spec.task == "regression" and spec.kind != "vector":
            return "MLP regresses one vector per sample, not a value per step"
        return super().incompatibility(spec)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
