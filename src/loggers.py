"""TensorBoard logging with a clean model graph: the network alone, added once, quietly."""

import warnings
from typing import Any

import torch
from lightning.pytorch import LightningModule, loggers
from lightning.pytorch.utilities import rank_zero_only


class TensorBoardLogger(loggers.TensorBoardLogger):
    """Lightning's TensorBoard logger, whose graph is the module's network (`model.net`, traced
    on `example_input_array`), added once per run (at fit, not again at test).

    TensorBoard still traces with `torch.jit.trace`: its deprecation notice and the tracer's
    notes from inside `nn.LSTM` concern the drawing, not the model, and are silenced.
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
