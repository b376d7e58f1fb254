"""The one contract between data and models: a datamodule says what it yields, networks adapt."""

from dataclasses import asdict, dataclass
from typing import Any, Literal

Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class DataSpec:
    """What one sample looks like.

    Attributes:
        task: "classification" or "regression"; picks the LightningModule that trains the network.
        input_shape: one input without the batch dimension: (2,) points, (1, 28, 28) images,
            (seq_len, features) sequences.
        num_outputs: classes for classification, target values per sample (or per step) for
            regression.
    """

    task: Task
    input_shape: tuple[int, ...]
    num_outputs: int

    @property
    def kind(self) -> Literal["vector", "sequence", "image"]:
        """The input's layout, read from its rank: (F,), (T, F) or (C, H, W)."""
        return ("vector", "sequence", "image")[len(self.input_shape) - 1]

    def describe(self) -> str:
        """A short human description, for error messages."""
        shape = "x".join(map(str, self.input_shape))
        return f"{self.task} of {self.kind} inputs {shape} into {self.num_outputs} outputs"

    def to_dict(self) -> dict[str, Any]:
        """Plain values only, so checkpoints that store it load with `weights_only=True`."""
        return {**asdict(self), "input_shape": list(self.input_shape)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "DataSpec":
        return cls(values["task"], tuple(values["input_shape"]), int(values["num_outputs"]))
