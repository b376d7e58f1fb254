"""Recurrent networks: the seed's RNN (read sin, predict cos) and its LSTM over image rows."""

from collections.abc import Sequence
from typing import Literal

from torch import Tensor, nn

from src.errors import ConfigError
from src.models.nets.network import Network

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RecurrentNet(Network):
    """An RNN, LSTM or GRU (batch first) with a linear head; subclasses pick where it reads.

    Sequences (T, F) are read step by step; an image (C, H, W) row by row, each of its H rows
    one step of C * W features.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        cell: Literal["rnn", "lstm", "gru"] = "lstm",
        hidden_size: int = 64,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(input_shape, num_outputs)
        if cell not in CELLS:
            raise ConfigError(f"model.net.cell must be one of {sorted(CELLS)}, got {cell!r}")
        if hidden_size < 1 or num_layers < 1:
            raise ConfigError(
                f"model.net.hidden_size={hidden_size} and model.net.num_layers={num_layers} "
                f"must be positive"
            )
        step_size = input_shape[0] * input_shape[2] if len(input_shape) == 3 else input_shape[1]
        self.rnn = CELLS[cell](
            input_size=step_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), num_outputs)

    def steps(self, x: Tensor) -> Tensor:
        """The last layer's output at every step, (N, T, hidden)."""
        if x.dim() == 4:  # (N, C, H, W) -> (N, H, C * W)
            x = x.permute(0, 2, 1, 3).flatten(2)
        return self.rnn(x)[0]


class RecurrentClassifier(RecurrentNet):
    """Classifies a whole sequence (or image) from the last step: the seed's MNIST LSTM."""

    input_kinds = ("sequence", "image")
    tasks = ("classification",)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.steps(x)[:, -1])


class RecurrentRegressor(RecurrentNet):
    """Predicts a value at every step, (N, T, num_outputs): the seed's sin -> cos RNN."""

    input_kinds = ("sequence",)
    tasks = ("regression",)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.steps(x))
