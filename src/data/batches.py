"""Index batches for one rank, and a loader that serves them from tensors already in memory.

Small data sets (points, sine, MNIST, CIFAR-10) fit in memory. Indexing one preloaded tensor with
a batch of indices costs a fraction of per-sample `Dataset.__getitem__` plus collate, so the
template serves such data through `InMemoryLoader`. The standard `DataLoader` path takes the same
`EpochBatchSampler`, so both paths yield the same samples in the same order for the same seed.
"""

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import Sampler


class EpochBatchSampler(Sampler[Tensor]):
    """Batches of indices for one rank, reshuffled each epoch from `(seed, epoch)`.

    Every rank draws the same permutation and cuts it into global batches of
    `batch_size * world_size` indices; rank `r` takes every `world_size`-th index of each, starting
    at `r`. So shards are disjoint, every sample is served once per epoch, and all ranks take the
    same number of steps. Only a last global batch smaller than `world_size` is dropped (it cannot
    give every rank a sample), and with `drop_last` any incomplete last global batch.

    Lightning calls `set_epoch` at the start of each training epoch (through `.sampler`). It also
    seeds `generator` from `(seed, epoch)`: a standard loader given it draws its workers' seeds
    from there rather than from the global generator, the same after a resume.
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        self.num_samples, self.batch_size = num_samples, batch_size
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.rank, self.world_size = rank, world_size
        self.generator = torch.Generator()
        self.set_epoch(0)

    @property
    def sampler(self) -> "EpochBatchSampler":
        """Where Lightning looks for `set_epoch` on a loader's batch sampler."""
        return self

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.generator.manual_seed(self.seed + epoch)

    def __iter__(self) -> Iterator[Tensor]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_samples, generator=generator)
        else:
            order = torch.arange(self.num_samples)
        global_batches = order.split(self.batch_size * self.world_size)[: len(self)]
        if self.world_size == 1:
            yield from global_batches
            return
        for global_batch in global_batches:
            yield global_batch[self.rank :: self.world_size]

    def __len__(self) -> int:
        global_size = self.batch_size * self.world_size
        full, rest = divmod(self.num_samples, global_size)
        keeps_rest = rest >= self.world_size and not self.drop_last
        return full + keeps_rest


class InMemoryLoader:
    """Yields `tuple(t[idx] for t in tensors)` per index batch, with an optional batch transform.

    The tensors may live on the training device; the indices follow them there. The loader is
    resumable: Lightning saves its `state_dict` (epoch and position in it) in checkpoints and
    restores it, so a run resumed mid-epoch continues with the batches it had not trained on.
    """

    def __init__(
        self,
        tensors: Sequence[Tensor],
        batch_sampler: EpochBatchSampler,
        transform: Callable[[tuple[Tensor, ...]], tuple[Tensor, ...]] | None = None,
    ) -> None:
        if len({len(t) for t in tensors}) != 1:
            raise ValueError("all tensors must hold the same number of samples")
        self.tensors, self.batch_sampler, self.transform = tuple(tensors), batch_sampler, transform
        self.position = 0  # batches of this epoch already trained on
        self._resume_at = (0, 0)  # (epoch, position) restored from a checkpoint

    @property
    def sampler(self) -> EpochBatchSampler:
        return self.batch_sampler

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        device = self.tensors[0].device
        on_device = device.type != "cpu"  # the sampler's indices are on the CPU
        resume_epoch, start = self._resume_at
        start = start if resume_epoch == self.batch_sampler.epoch else 0
        self._resume_at = (0, 0)
        for position, indices in enumerate(self.batch_sampler):
            if position >= start:
                # Lightning fetches a sized loader's batches on demand, not ahead: the batches
                # handed out so far are the ones trained on when a checkpoint is saved
                self.position = position + 1
                indices = indices.to(device, non_blocking=True) if on_device else indices
                batch = tuple([t[indices] for t in self.tensors])
                yield self.transform(batch) if self.transform else batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.batch_sampler.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume inside the saved epoch: iterating it next skips the batches trained on."""
        self.batch_sampler.set_epoch(state["epoch"])
        self._resume_at = (state["epoch"], state["position"])

    def __len__(self) -> int:
        return len(self.batch_sampler)
