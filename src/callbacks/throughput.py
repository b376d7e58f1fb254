"""Lightning's throughput monitor, for batches of (inputs, targets) tuples or dicts."""

from collections.abc import Mapping
from typing import Any

from lightning.pytorch.callbacks import ThroughputMonitor
from torch import Tensor


class Throughput(ThroughputMonitor):
    """`ThroughputMonitor` counting a batch's samples as the length of its first tensor."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(batch_size_fn=batch_size, **kwargs)


def batch_size(batch: tuple[Tensor, ...] | Mapping[str, Tensor] | Tensor) -> int:
    if isinstance(batch, Tensor):
        return len(batch)
    return len(next(iter(batch.values())) if isinstance(batch, Mapping) else batch[0])
