"""A network from a module the project's configuration does not trust (configs/trusted.yaml)."""

from torch import Tensor, nn


class Tiny(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_outputs: int) -> None:
        super().__init__()
        self.linear = nn.Linear(input_shape[0], num_outputs)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x)
