"""Gaussian point clouds, one class each: the seed's 2-D classification toy, generated in memory."""

from collections.abc import Sequence

import torch
from torch import Tensor

from src.data.generated import GeneratedDataModule
from src.data.spec import DataSpec
from src.errors import ConfigError


class PointsDataModule(GeneratedDataModule):
    """`num_samples` points split evenly between clouds centred on `means`, all with one `std`.

    The defaults are the seed's: two clouds at (2, 2) and (-2, -2), std 1.
    """

    def __init__(
        self,
        num_samples: int = 2000,
        means: Sequence[Sequence[float]] = ((2.0, 2.0), (-2.0, -2.0)),
        std: float = 1.0,
        **kwargs,
    ) -> None:
        super().__init__(num_samples, **kwargs)
        dims = {len(mean) for mean in means}
        if len(means) < 2 or len(dims) != 1:
            raise ConfigError(
                f"data.means must list 2 or more centres of one dimension, got {means}"
            )
        if std <= 0:
            raise ConfigError(f"data.std must be positive, got {std}")
        self.means, self.std = torch.tensor(means, dtype=torch.float32), std

    @property
    def spec(self) -> DataSpec:
        num_classes, dim = self.means.shape
        return DataSpec("classification", "vector", (dim,), num_classes)

    def generate(self, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        labels = torch.arange(self.num_samples) % len(self.means)
        noise = torch.randn(self.num_samples, self.means.shape[1], generator=generator)
        return self.means[labels] + self.std * noise, labels
