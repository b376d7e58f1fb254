"""Predictions written as a table when Lightning's `predict` ends."""

import csv
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from src.engine.atomic import atomic_write
from src.models.task_module import value_columns


class PredictionWriter(BasePredictionWriter):
    """Writes `path`, a CSV file (atomically): each input's name, then the columns its task
    module gives (`prediction_columns`: the class and each class's probability, or the values;
    for another module, its outputs' values). Keeps the table as `header` and `rows`."""

    def __init__(self, path: str | Path, names: list[str]) -> None:
        super().__init__(write_interval="epoch")
        self.path, self.names = Path(path), names
        self.header: list[str] = []
        self.rows: list[list] = []

    def write_on_epoch_end(
        self, trainer: L.Trainer, pl_module: Any, predictions: Any, batch_indices: Any
    ) -> None:
        outputs = torch.cat(predictions).float().cpu()
        columns = getattr(pl_module, "prediction_columns", value_columns)
        self.header, self.rows = columns(outputs)
        table = zip(self.names, self.rows, strict=True)
        with atomic_write(self.path, "w", newline="") as file:
            csv.writer(file).writerows([["input", *self.header], *([n, *r] for n, r in table)])
