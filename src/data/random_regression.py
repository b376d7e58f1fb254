"""The two-layer-net seed's task: map random inputs to random targets (a network must memorise)."""

import torch
from torch import Tensor

from src.data.generated import GeneratedDataModule
from src.data.spec import DataSpec
from src.errors import ConfigError


class RandomDataModule(GeneratedDataModule):
    """`num_samples` standard-normal inputs of `input_dim` and targets of `output_dim`.

    The seed's defaults: N=64, D_in=1000, D_out=10. Only the training loss means anything here.
    """

    def __init__(
        self, num_samples: int = 64, input_dim: int = 1000, output_dim: int = 10, **kwargs
    ) -> None:
        super().__init__(num_samples, **kwargs)
        if input_dim < 1 or output_dim < 1:
            raise ConfigError("data.input_dim and data.output_dim must be positive integers")
        self.input_dim, self.output_dim = input_dim, output_dim

    @property
    def spec(self) -> DataSpec:
        return DataSpec("regression", "vector", (self.input_dim,), self.output_dim)

    def generate(self, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        inputs = torch.randn(self.num_samples, self.input_dim, generator=generator)
        return inputs, torch.randn(self.num_samples, self.output_dim, generator=generator)
