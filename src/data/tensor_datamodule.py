"""The base of every datamodule whose splits fit in memory as tensors."""

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, TensorDataset

from src.data.batches import EpochBatchSampler, InMemoryLoader
from src.data.folds import check_folds
from src.data.spec import DataSpec
from src.data.stateful import stateful_loader
from src.errors import ConfigError

Split = Literal["train", "val", "test"]
BatchTransform = Callable[[tuple[Tensor, ...]], tuple[Tensor, ...]]


class TensorDataModule(L.LightningDataModule, ABC):
    """Serves `train`/`val`/`test` splits of (inputs, targets) tensors.

    A subclass names its `spec` and fills `self.splits` in `setup` (with `folds`, the training
    and validation splits by `fold_split`). Batches come from the
    in-memory loader (`loader="memory"`, the fast default) or a standard loader over
    `self.dataset(split)` (`loader="torch"`: torchdata's `StatefulDataLoader`, with workers and
    pinned memory); both draw the same index batches from an `EpochBatchSampler`, sharded across
    ranks under DDP, and both resume mid-epoch exactly. With `on_device`,
    the in-memory tensors move to the training device (a GPU) when they fit there, and
    `batch_transform` (augmentation) runs on whole batches on that device.
    """

    # its loaders give each DDP rank its own shard: Lightning adds no distributed sampler
    shards_itself = True

    def __init__(
        self,
        batch_size: int = 64,
        loader: Literal["memory", "torch"] = "memory",
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        on_device: bool = True,
        seed: int = 0,
        folds: int | None = None,
        fold: int = 0,
    ) -> None:
        super().__init__()
        check_folds(folds, fold)
        self.folds, self.fold = folds, fold
        if batch_size < 1:
            raise ConfigError(f"data.batch_size must be a positive integer, got {batch_size}")
        self.batch_size, self.loader, self.seed = batch_size, loader, seed
        self.num_workers, self.pin_memory, self.on_device = num_workers, pin_memory, on_device
        self.persistent_workers = persistent_workers and num_workers > 0
        self.splits: dict[Split, tuple[Tensor, ...]] = {}

    @property
    @abstractmethod
    def spec(self) -> DataSpec:
        """The shape of what this datamodule yields; cheap, needs no data loaded."""

    def dataset(self, split: Split) -> Dataset:
        """The per-sample dataset behind the `torch` loader path."""
        return TensorDataset(*self.splits[split])

    def batch_transform(self, split: Split) -> BatchTransform | None:
        """What the in-memory path applies to each batch of `split` (none by default)."""
        return None

    def train_dataloader(self) -> InMemoryLoader | DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> InMemoryLoader | DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> InMemoryLoader | DataLoader:
        return self._loader("test", shuffle=False)

    def _loader(self, split: Split, shuffle: bool) -> InMemoryLoader | DataLoader:
        if split not in self.splits:
            raise RuntimeError(f"{type(self).__name__}.setup() did not create the {split!r} split")
        trainer = self.trainer
        sampler = EpochBatchSampler(
            len(self.splits[split][0]),
            self.batch_size,
            shuffle=shuffle,
            seed=self.seed,
            rank=trainer.global_rank if trainer else 0,
            world_size=trainer.world_size if trainer else 1,
        )
        if trainer:  # a resumed run's epoch: Lightning starts its loader before it sets the epoch
            sampler.set_epoch(trainer.current_epoch)
        if self.loader == "memory":
            tensors = self._move_to_device(self.splits[split])
            return InMemoryLoader(tensors, sampler, self.batch_transform(split))
        return stateful_loader(
            self.dataset(split),
            batch_sampler=sampler,
            generator=sampler.generator,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
        )

    def _move_to_device(self, tensors: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """The tensors on the training device if `on_device` and they fit in half its memory."""
        if not (self.on_device and self.trainer):
            return tensors
        device = self.trainer.strategy.root_device
        if device.type == "cpu":
            return tensors
        size = sum(t.nbytes for t in tensors)
        if device.type == "cuda" and 2 * size > torch.cuda.mem_get_info(device)[0]:
            rank_zero_warn(f"{size / 2**30:.1f} GiB of data do not fit on {device}: kept in RAM")
            return tensors
        return tuple(t.to(device) for t in tensors)
