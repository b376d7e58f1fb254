"""The one contract between data and models: a datamodule says what it yields, networks adapt."""

from dataclasses import asdict, dataclass
from typing import Any, Literal

Kind = Literal["vector", "sequence", "image"]


@dataclass(frozen=True)
class DataSpec:
    """What one sample looks like.

    Attributes:
        task: what is learned, "classification" or "regression": the module in
            `src/models/<task>.py` trains the network unless `model.module` names another.
        kind: the input's layout: a "vector" (F,), a "sequence" (T, F) or an "image" (C, H, W).
        input_shape: one input without the batch dimension: (2,) points, (1, 28, 28) images,
            (seq_len, features) sequences.
        num_outputs: classes for classification, target values per sample (or per step) for
            regression.
    """

    task: str
    kind: Kind
    input_shape: tuple[int, ...]
    num_outputs: int

    def describe(self) -> str:
        """A short human description, for error messages."""
        shape = "x".join(map(str, self.input_shape))
        return f"{self.task} of {self.kind} inputs {shape} into {self.num_outputs} outputs"

    def to_dict(self) -> dict[str, Any]:
        """Plain values only, so checkpoints that store it load with `weights_only=True`."""
        return {**asdict(self), "input_shape": list(self.input_shape)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "DataSpec":
        shape = tuple(values["input_shape"])
        kind = values.get("kind") or ("vector", "sequence", "image")[len(shape) - 1]  # older ones
        return cls(values["task"], kind, shape, int(values["num_outputs"]))
