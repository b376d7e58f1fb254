"""What every network shares: construction from a DataSpec and a say in which specs it takes."""

from collections.abc import Sequence

from torch import nn

from src.data.spec import DataSpec

KIND_SHAPES = {"vector": "vector (F,)", "sequence": "sequence (T, F)", "image": "image (C, H, W)"}


class Network(nn.Module):
    """A network built as `Net(input_shape, num_outputs, **hyperparameters)`.

    `input_kinds` and `tasks` (None: any) say which data it takes; a subclass with further limits
    extends `incompatibility`. So a bad model x data pair fails at start-up with a sentence
    instead of a shape error inside `forward`.
    """

    input_kinds: tuple[str, ...] = ("vector", "sequence", "image")
    tasks: tuple[str, ...] | None = None

    def __init__(self, input_shape: Sequence[int], num_outputs: int) -> None:
        super().__init__()
        self.input_shape, self.num_outputs = tuple(input_shape), num_outputs

    @classmethod
    def incompatibility(cls, spec: DataSpec) -> str | None:
        """Why this network cannot take data of `spec`, or None when it can."""
        if spec.kind not in cls.input_kinds:
            kinds = " or ".join(KIND_SHAPES[kind] for kind in cls.input_kinds)
            return f"{cls.__name__} needs {kinds} input"
        if cls.tasks is not None and spec.task not in cls.tasks:
            return f"{cls.__name__} is built for {' and '.join(cls.tasks)} only"
        return None
