"""The one contract between data and models: a datamodule says what it yields, networks adapt.

A datamodule declares its `DataSpec` as a `spec` attribute (or property), cheaply, before any
data is loaded; one that does not is asked for one training batch, and the spec is read off it
(`spec_of`).
"""

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from src.errors import ConfigError

Kind = Literal["vector", "sequence", "image", "tokens"]
# the keys a dict batch is read by when its datamodule names none, in this order
INPUT_KEYS = ("inputs", "input", "x", "input_ids", "pixel_values", "image", "images")
TARGET_KEYS = ("targets", "target", "y", "labels", "label")
FLOAT_KINDS: dict[int, Kind] = {1: "vector", 2: "sequence", 3: "image"}


@dataclass(frozen=True)
class DataSpec:
    """What one sample looks like.

    Attributes:
        task: what is learned, "classification" or "regression": the module in
            `src/models/<task>.py` trains the network unless `model.module` names another.
        kind: the input's layout: a "vector" (F,), a "sequence" (T, F), an "image" (C, H, W), or
            "tokens", integer ids (T,).
        input_shape: one input without the batch dimension: (2,) points, (1, 28, 28) images,
            (seq_len, features) sequences, (seq_len,) token ids.
        num_outputs: classes for classification, target values per sample (or per step) for
            regression.
        dtype: the inputs' torch dtype, by name: "float32", "int64", ...
        classes: the classes' names, in label order (empty: the labels are their names).
        batch_keys: for batches that are dicts, the keys of the inputs and of the targets; None
            for (inputs, targets) tuples.
    """

    task: str
    kind: Kind
    input_shape: tuple[int, ...]
    num_outputs: int
    dtype: str = "float32"
    classes: tuple[str, ...] = ()
    batch_keys: tuple[str, str] | None = None

    def describe(self) -> str:
        """A short human description, for error messages."""
        shape = "x".join(map(str, self.input_shape))
        outputs = f"{self.num_outputs} outputs"
        return f"{self.task} of {self.kind} inputs {shape} ({self.dtype}) into {outputs}"

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)

    def example(self, batch_size: int = 1) -> Tensor:
        """A batch of zeros shaped and typed as the inputs."""
        return torch.zeros(batch_size, *self.input_shape, dtype=self.torch_dtype)

    def split(self, batch: Any) -> tuple[Tensor, Tensor]:
        """A batch's inputs and targets: from a dict by `batch_keys`, else its first two items."""
        if self.batch_keys:
            inputs, targets = self.batch_keys
            return batch[inputs], batch[targets]
        return batch[0], batch[1]

    def inputs(self, batch: Any) -> Tensor:
        """A batch's inputs: the batch itself when it is a tensor (inputs alone, as to predict)."""
        if isinstance(batch, Tensor):
            return batch
        return batch[self.batch_keys[0]] if self.batch_keys else batch[0]

    def to_dict(self) -> dict[str, Any]:
        """Plain values only, so checkpoints that store it load with `weights_only=True`."""
        values = asdict(self)
        values |= {"input_shape": list(self.input_shape), "classes": list(self.classes)}
        return values | {"batch_keys": list(self.batch_keys) if self.batch_keys else None}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "DataSpec":
        shape = tuple(values["input_shape"])
        kind = values.get("kind") or FLOAT_KINDS[len(shape)]  # checkpoints of older versions
        keys = values.get("batch_keys")
        return cls(
            values["task"],
            kind,
            shape,
            int(values["num_outputs"]),
            values.get("dtype", "float32"),
            tuple(values.get("classes") or ()),
            (keys[0], keys[1]) if keys else None,
        )


def spec_of(datamodule: Any) -> DataSpec:
    """The datamodule's `spec` when it declares one, else the spec read off its first training
    batch (after `prepare_data` and `setup("fit")`), its classes from a `num_classes` or
    `classes` attribute; `ConfigError` when neither says enough."""
    declared = getattr(datamodule, "spec", None)
    if declared is not None:
        if not isinstance(declared, DataSpec):
            raise ConfigError(
                f"data: {type(datamodule).__name__}.spec is a {type(declared).__name__}, not a "
                f"DataSpec; return src.data.spec.DataSpec(task, kind, input_shape, num_outputs)"
            )
        return declared
    datamodule.prepare_data()
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    classes = tuple(str(c) for c in getattr(datamodule, "classes", None) or ())
    num_classes = getattr(datamodule, "num_classes", None) or len(classes) or None
    return spec_from_batch(batch, num_classes, classes, type(datamodule).__name__)


def spec_from_batch(
    batch: Any, num_classes: int | None, classes: Sequence[str], name: str
) -> DataSpec:
    """The spec of data yielding `batch`: integer targets are class labels (`num_classes` of
    them), float targets values to regress; float inputs are vectors, sequences or images by
    their number of dimensions, integer inputs token ids."""
    keys = None
    if isinstance(batch, Mapping):
        keys = tuple(
            next((k for k in known if k in batch), None) for known in (INPUT_KEYS, TARGET_KEYS)
        )
        if None in keys:
            raise ConfigError(
                f"data: {name} yields dict batches with keys {sorted(batch)}; name the inputs "
                f"{INPUT_KEYS} and the targets {TARGET_KEYS}, or declare a spec with batch_keys"
            )
        inputs, targets = batch[keys[0]], batch[keys[1]]
    elif isinstance(batch, Sequence) and len(batch) >= 2:
        inputs, targets = batch[0], batch[1]
    else:
        raise ConfigError(
            f"data: {name} yields {type(batch).__name__} batches; yield (inputs, targets) or a "
            f"dict of them"
        )
    if not (isinstance(inputs, Tensor) and isinstance(targets, Tensor)):
        raise ConfigError(f"data: {name}'s batches hold no tensors of inputs and targets")
    shape = tuple(inputs.shape[1:])
    kind = FLOAT_KINDS.get(len(shape)) if inputs.is_floating_point() else "tokens"
    if kind is None or (kind == "tokens" and len(shape) != 1):
        raise ConfigError(
            f"data: {name}'s inputs of shape {tuple(inputs.shape)} and {inputs.dtype} are none "
            f"of the kinds a spec names (float vectors, sequences, images, integer token ids); "
            f"declare a spec"
        )
    if targets.is_floating_point():
        task, num_outputs = "regression", (targets.shape[-1] if targets.dim() > 1 else 1)
    elif num_classes:
        task, num_outputs = "classification", num_classes
    else:
        raise ConfigError(
            f"data: {name} yields integer targets but says not how many classes there are; give "
            f"it a num_classes attribute, or declare a spec"
        )
    dtype = str(inputs.dtype).removeprefix("torch.")
    return DataSpec(task, kind, shape, num_outputs, dtype, tuple(classes), keys)
