"""Lightning's CSV and TensorBoard loggers, continuing a resumed run's history and drawing a
clean model graph."""

import csv
import warnings
from typing import Any

import torch
from lightning.pytorch import LightningModule, loggers
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from src.engine.atomic import atomic_write


class CSVLogger(loggers.CSVLogger):
    """Lightning's CSV logger, which continues an existing `metrics.csv` instead of deleting it.

    A resumed run passes `purge_step`, the step of the checkpoint it resumes from: the rows the
    interrupted run logged at that step or later are dropped, as TensorBoard's `purge_step` hides
    its events, so the file reads as one run. Without it an existing file starts afresh.
    """

    def __init__(self, *args: Any, purge_step: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.purge_step = purge_step

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuingWriter(self.log_dir, self.purge_step)
        return self._experiment


class _ContinuingWriter(ExperimentWriter):
    """Lightning's writer, keeping the rows of `metrics.csv` logged before `purge_step`."""

    def __init__(self, log_dir: str, purge_step: int | None) -> None:
        self.purge_step = purge_step
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:  # Lightning's deletes metrics.csv
        if not self._fs.isfile(self.metrics_file_path):
            return
        with open(self.metrics_file_path, newline="") as file:
            reader = csv.DictReader(file)
            rows = [row for row in reader if self.purge_step and int(row["step"]) < self.purge_step]
        if not rows:
            self._fs.rm_file(self.metrics_file_path)
            return
        self.metrics_keys = list(reader.fieldnames)
        with atomic_write(self.metrics_file_path, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(rows)


class TensorBoardLogger(loggers.TensorBoardLogger):
    """Lightning's TensorBoard logger, whose graph is the module's network (`model.net`, traced
    on `example_input_array`), added once per run (at fit, not again at test).

    TensorBoard still traces with `torch.jit.trace`: its deprecation notice and the tracer's
    notes from inside `nn.LSTM` concern the drawing, not the model, and are silenced. A resumed
    run passes `purge_step` (a `SummaryWriter` argument), so TensorBoard hides what the
    interrupted run logged after its checkpoint.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._graph_added = False

    @rank_zero_only
    def log_graph(self, model: LightningModule, input_array: Any = None) -> None:
        example = model.example_input_array if input_array is None else input_array
        if not self._log_graph or self._graph_added or example is None:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", r"`torch\.jit\.trace", FutureWarning)
            self.experiment.add_graph(getattr(model, "net", model), example.to(model.device))
        self._graph_added = True
