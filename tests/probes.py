"""Callbacks that record what a run saw, for tests to read."""

import hashlib
import json
from pathlib import Path
from typing import Any

import lightning as L


class RecordSamples(L.Callback):
    """Write `<path>/rank<global rank>.json`: for each stage, a fingerprint (the md5 of its bytes)
    of every input sample in the batches this rank trained, validated and tested on (not the
    sanity check's)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.seen: dict[str, list[str]] = {"train": [], "val": [], "test": []}

    def on_train_batch_start(self, trainer, pl_module, batch: Any, *args: Any) -> None:
        self._record("train", pl_module, batch)

    def on_validation_batch_start(self, trainer, pl_module, batch: Any, *args: Any) -> None:
        if not trainer.sanity_checking:
            self._record("val", pl_module, batch)

    def on_test_batch_start(self, trainer, pl_module, batch: Any, *args: Any) -> None:
        self._record("test", pl_module, batch)

    def teardown(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / f"rank{trainer.global_rank}.json").write_text(json.dumps(self.seen))

    def _record(self, stage: str, pl_module: L.LightningModule, batch: Any) -> None:
        inputs = pl_module.spec.split(batch)[0].cpu().contiguous()
        self.seen[stage] += [hashlib.md5(row.numpy().tobytes()).hexdigest() for row in inputs]
