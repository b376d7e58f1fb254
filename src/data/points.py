"""Gaussian point clouds, one class each: the seed's 2-D classification toy, generated in memory."""

from collections.abc import Sequence

import torch

from src.data.base import TensorDataModule
from src.data.spec import DataSpec


class PointsDataModule(TensorDataModule):
    """`num_samples` points split evenly between clouds centred on `means`, all with one `std`.

    The defaults are the seed's: two clouds at (2, 2) and (-2, -2), std 1. Points are drawn
    from `data_seed`, shuffled and cut into train/val/test by the `splits` fractions; the run's
    `seed` only orders the batches, so runs with different seeds see the same data.
    """

    def __init__(
        self,
        num_samples: int = 2000,
        means: Sequence[Sequence[float]] = ((2.0, 2.0), (-2.0, -2.0)),
        std: float = 1.0,
        splits: Sequence[float] = (0.8, 0.1, 0.1),
        data_seed: int = 0,
        **loader_kwargs,
    ) -> None:
        super().__init__(**loader_kwargs)
        dims = {len(mean) for mean in means}
        if len(means) < 2 or len(dims) != 1:
            raise ValueError(
                f"data.means must list 2 or more centres of one dimension, got {means}"
            )
        if std <= 0:
            raise ValueError(f"data.std must be positive, got {std}")
        if len(splits) != 3 or min(splits) <= 0 or abs(sum(splits) - 1) > 1e-6:
            raise ValueError(
                f"data.splits must be three positive train/val/test fractions summing to 1, "
                f"got {list(splits)} (sum {sum(splits):g})"
            )
        if min(splits) * num_samples < 1:
            raise ValueError(
                f"data.num_samples={num_samples} leaves a split empty "
                f"with data.splits={list(splits)}"
            )
        self.num_samples, self.std, self.fractions = num_samples, std, tuple(splits)
        self.data_seed = data_seed
        self.means = torch.tensor(means, dtype=torch.float32)

    @property
    def spec(self) -> DataSpec:
        num_classes, dim = self.means.shape
        return DataSpec("classification", (dim,), num_classes)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        generator = torch.Generator().manual_seed(self.data_seed)
        labels = torch.arange(self.num_samples) % len(self.means)
        labels = labels[torch.randperm(self.num_samples, generator=generator)]
        noise = torch.randn(self.num_samples, self.means.shape[1], generator=generator)
        points = self.means[labels] + self.std * noise
        num_train = round(self.fractions[0] * self.num_samples)
        num_val = round(self.fractions[1] * self.num_samples)
        bounds = {"train": (0, num_train), "val": (num_train, num_train + num_val)}
        bounds["test"] = (num_train + num_val, self.num_samples)
        self.splits = {name: (points[a:b], labels[a:b]) for name, (a, b) in bounds.items()}
