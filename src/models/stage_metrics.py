"""A stage's loss mean and torchmetrics, fed in chunks: a torchmetrics call costs about 0.3 ms on
a CPU, more than a small network's whole training step, so batches are kept and given to the
metrics a chunk at a time. A reader of the training step may skip this file."""

import torch
from torch import Tensor, nn
from torchmetrics import CatMetric, Metric, MetricCollection


class StageMetrics(nn.Module):
    """The mean loss and `metrics` of one stage (`prefix`: "train/", "val/", "test/").

    `add` keeps a batch's results; `update` gives the kept batches to the metrics in one call
    each; `window` does the same and returns the values of just those batches (the step values
    logged during training); `epoch` returns the values over everything added since the last
    `epoch`, then starts afresh. Every rank's samples count: the torchmetrics synchronise.
    """

    def __init__(self, metrics: MetricCollection, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix
        # every batch's loss (a NaN kept) and size, summed once at the epoch's end: the mean is the
        # same however the batches were chunked (a checkpoint's `states` gives them early)
        self.losses, self.sizes = CatMetric(nan_strategy="disable"), CatMetric()
        self.metrics = metrics.clone(prefix=prefix)
        # (loss, batch size, predictions, targets) of the batches the metrics have not seen yet
        self.kept: list[tuple[Tensor, int, Tensor, Tensor]] = []

    def add(self, loss: Tensor, batch_size: int, predictions: Tensor, targets: Tensor) -> None:
        self.kept.append((loss.detach(), batch_size, predictions, targets))

    def update(self) -> None:
        if self.kept:
            losses, weights, predictions, targets = self._take()
            self.losses.update(losses)
            self.sizes.update(weights)
            self.metrics.update(predictions, targets)

    def window(self) -> dict[str, Tensor]:
        """The values of the batches kept since the last update (which this is)."""
        losses, weights, predictions, targets = self._take()
        self.losses.update(losses)
        self.sizes.update(weights)
        mean = (losses * weights).sum() / weights.sum()
        return {f"{self.prefix}loss": mean} | self.metrics(predictions, targets)

    def epoch(self) -> dict[str, Tensor] | None:
        """The values over the epoch (None when no batch came), then start afresh."""
        self.update()
        if self.losses.update_count == 0:
            return None
        losses, sizes = self.losses.compute(), self.sizes.compute()
        mean = (losses * sizes).sum() / sizes.sum()
        values = {f"{self.prefix}loss": mean, **self.metrics.compute()}
        self.losses.reset()
        self.sizes.reset()
        self.metrics.reset()
        return values

    def states(self) -> dict[str, Tensor]:
        """What `load_states` restores: the sums so far, for an epoch resumed mid-way."""
        self.update()
        metrics = [m for m in self.modules() if isinstance(m, Metric)]
        for metric in metrics:
            metric.persistent(True)
        try:
            return self.state_dict()
        finally:
            for metric in metrics:
                metric.persistent(False)

    def load_states(self, states: dict[str, Tensor]) -> None:
        self.load_state_dict(states, strict=False)

    def _take(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        losses, sizes, predictions, targets = zip(*self.kept, strict=True)
        self.kept.clear()
        losses = torch.stack(losses)
        weights = torch.tensor(sizes, dtype=losses.dtype, device=losses.device)
        return losses, weights, torch.cat(predictions), torch.cat(targets)
