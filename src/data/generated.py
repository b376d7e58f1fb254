"""The base of datamodules that generate their data in memory from a seed."""

from abc import abstractmethod
from collections.abc import Sequence

import torch
from torch import Tensor

from src.data.folds import fold_split
from src.data.tensor_datamodule import TensorDataModule
from src.errors import ConfigError


class GeneratedDataModule(TensorDataModule):
    """Draws `num_samples` samples from `data_seed`, shuffles them and cuts train/val/test by the
    `splits` fractions (with `folds`, train and val together into folds). The run's `seed` only
    orders the batches, so runs with different seeds
    see the same data. Subclasses implement `generate`.
    """

    def __init__(
        self,
        num_samples: int,
        splits: Sequence[float] = (0.8, 0.1, 0.1),
        data_seed: int = 0,
        **loader_kwargs,
    ) -> None:
        super().__init__(**loader_kwargs)
        if len(splits) != 3 or min(splits) <= 0 or abs(sum(splits) - 1) > 1e-6:
            raise ConfigError(
                f"data.splits must be three positive train/val/test fractions summing to 1, "
                f"got {list(splits)} (sum {sum(splits):g})"
            )
        if min(splits) * num_samples < 1:
            raise ConfigError(
                f"data.num_samples={num_samples} leaves a split empty "
                f"with data.splits={list(splits)}"
            )
        self.num_samples, self.fractions, self.data_seed = num_samples, tuple(splits), data_seed

    @abstractmethod
    def generate(self, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """All `num_samples` (inputs, targets), drawn with `generator`."""

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        generator = torch.Generator().manual_seed(self.data_seed)
        tensors = self.generate(generator)
        order = torch.randperm(self.num_samples, generator=generator)
        num_train = round(self.fractions[0] * self.num_samples)
        num_val = round(self.fractions[1] * self.num_samples)
        parts = order.split([num_train, num_val, self.num_samples - num_train - num_val])
        indices = dict(zip(("train", "val", "test"), parts, strict=True))
        if self.folds:
            indices |= fold_split(torch.cat(parts[:2]), self.folds, self.fold)
        self.splits = {name: tuple(t[idx] for t in tensors) for name, idx in indices.items()}
