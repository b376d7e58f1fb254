"""What every network shares: construction from a DataSpec and a say in which specs it takes."""

from collections.abc import Sequence

from torch import nn

from src.data.spec import DataSpec


class Network(nn.Module):
    """A network built as `Net(input_shape, num_outputs, **hyperparameters)`.

    Subclasses override `incompatibility` when they cannot take every spec, so a bad model x data
    pair fails at start-up with a sentence instead of a shape error inside `forward`.
    """

    def __init__(self, input_shape: Sequence[int], num_outputs: int) -> None:
        super().__init__()
        self.input_shape, self.num_outputs = tuple(input_shape), num_outputs

    @classmethod
    def incompatibility(cls, spec: DataSpec) -> str | None:
        """Why this network cannot take data of `spec`, or None when it can."""
        return None
