"""Points on a line with Gaussian noise: the seed's linear regression, y = 2x + 5 by default."""

from collections.abc import Sequence

import torch
from torch import Tensor

from src.data.generated import GeneratedDataModule
from src.data.spec import DataSpec
from src.errors import ConfigError


class LinearDataModule(GeneratedDataModule):
    """x uniform in `x_range`, y = slope * x + intercept + N(0, noise^2); shapes (1,) and (1,)."""

    def __init__(
        self,
        num_samples: int = 1000,
        slope: float = 2.0,
        intercept: float = 5.0,
        noise: float = 0.5,
        x_range: Sequence[float] = (-1.0, 1.0),
        **kwargs,
    ) -> None:
        super().__init__(num_samples, **kwargs)
        if noise < 0:
            raise ConfigError(f"data.noise must be non-negative, got {noise}")
        if x_range[0] >= x_range[1]:
            raise ConfigError(f"data.x_range must be [low, high] with low < high, got {x_range}")
        self.slope, self.intercept, self.noise = slope, intercept, noise
        self.x_range = tuple(x_range)

    @property
    def spec(self) -> DataSpec:
        return DataSpec("regression", "vector", (1,), 1)

    def generate(self, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        low, high = self.x_range
        x = low + (high - low) * torch.rand(self.num_samples, 1, generator=generator)
        noise = self.noise * torch.randn(x.shape, generator=generator)
        return x, self.slope * x + self.intercept + noise
