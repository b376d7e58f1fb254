"""Standard loaders that resume exactly mid-epoch, with workers: torchdata's `StatefulDataLoader`
(a drop-in `DataLoader` whose position Lightning saves in checkpoints and restores) over samples
whose random transforms are seeded by their index.

A worker's random generators are seeded once, when it starts, and a checkpoint cannot hold their
state; so in worker processes each sample's transforms draw from generators seeded by the
loader's seed for the epoch (which the loader's state restores) and the sample's index. Random
crops and flips then depend on neither the worker that loads a sample nor an interruption.
"""

import random
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info
from torchdata.stateful_dataloader import StatefulDataLoader


class SeededSamples(Dataset):
    """`dataset`, each sample loaded in a worker with Python's, NumPy's and torch's generators
    seeded from (the loader's base seed, its index); in the main process (no workers), with the
    global generators as they are, which checkpoints restore."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        worker = get_worker_info()
        if worker is not None:
            seed = hash((worker.seed - worker.id, int(index))) % 2**32
            random.seed(seed)
            np.random.seed(seed)
            torch.default_generator.manual_seed(seed)
        return self.dataset[index]


def stateful_loader(dataset: Dataset, **kwargs: Any) -> StatefulDataLoader:
    """A `StatefulDataLoader` over `SeededSamples(dataset)`, with `DataLoader`'s arguments."""
    return StatefulDataLoader(SeededSamples(dataset), **kwargs)
