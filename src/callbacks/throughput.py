"""Lightning's throughput monitor, for the (inputs, targets) batches of the template's data."""

from typing import Any

from lightning.pytorch.callbacks import ThroughputMonitor
from torch import Tensor


class Throughput(ThroughputMonitor):
    """`ThroughputMonitor` counting a batch's samples as the length of its inputs."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(batch_size_fn=batch_size, **kwargs)


def batch_size(batch: tuple[Tensor, ...]) -> int:
    return len(batch[0])
