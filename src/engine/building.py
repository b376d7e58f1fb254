"""Training modules (how to train) around networks (what to train), built from a model config for
the data's spec.

The data's task (`DataSpec.task`) picks the `TaskModule` in `src/models/<task>.py`; `model.module`
may name any other LightningModule instead. Either gets, by the names its `__init__` takes, the
network built for the data (`net`), the optimizer and scheduler as factories (`optimizer`,
`scheduler`), the data's `spec`, `input_shape`, `num_outputs` and `num_classes`, and the model
config's other keys.
"""

from collections.abc import Mapping, Sequence
from importlib import import_module
from importlib.util import find_spec
from typing import Any

import lightning as L
import torch
from torch import nn

from src.data.spec import DataSpec
from src.engine.slots import (
    MODULE,
    NETWORK,
    OPTIMIZER,
    RUNTIME_OPTIONS,
    SCHEDULER,
    at,
    build,
    checked_arguments,
    factory,
    parameters,
    required_parameters,
    target_callable,
)
from src.errors import ConfigError
from src.models.task_module import LIGHTNING_SCHEDULER_KEYS, TaskModule

BUILT = ("net", "optimizer", "scheduler")  # model config keys the module gets built


def build_model(
    model: Mapping[str, Any],
    spec: DataSpec,
    trusted: Sequence[str],
    where: str | None = None,
    prefix: str = "model",
) -> L.LightningModule:
    """The training module of the model config `model` (plain values; keys shown as
    `<prefix>.<key>` in errors about `where`) for data of `spec`, with everything it takes."""
    cls = module_class(spec, model.get("module"), trusted, where, f"{prefix}.module")
    built: dict[str, Any] = {}
    if model.get("net"):
        built["net"] = build_network(model["net"], spec, trusted, where, f"{prefix}.net")
    if config := model.get("optimizer"):
        key = f"{prefix}.optimizer"
        built["optimizer"] = factory(config, OPTIMIZER, trusted, where, key, ["params"])
    if config := dict(model.get("scheduler") or {}):
        lightning = {k: config.pop(k) for k in LIGHTNING_SCHEDULER_KEYS if k in config}
        key = f"{prefix}.scheduler"
        scheduler = factory(config, SCHEDULER, trusted, where, key, ["optimizer"])
        built["scheduler"] = lightning | {"scheduler": scheduler}
    names, _ = parameters(cls)
    for name in built:
        if name not in names:
            raise ConfigError(
                f"{at(where)}{prefix}.{name} is set, but {cls.__name__} takes no {name}; set "
                f"{prefix}.{name}=null, or give {cls.__name__} a {name} argument"
            )
    data = {
        "spec": spec,
        "input_shape": spec.input_shape,
        "num_outputs": spec.num_outputs,
        "num_classes": spec.num_outputs,
    }
    data = {name: value for name, value in data.items() if name in names}
    options = {
        key: value
        for key, value in model.items()
        if key not in ("module", *BUILT)
        and (key in names or RUNTIME_OPTIONS.get(key, object()) != value)
    }
    arguments = checked_arguments(cls, options, where, prefix, given=[*built, *data])
    given = arguments.keys() | built.keys() | data.keys()
    for name, parameter in required_parameters(cls).items():
        if name not in given:
            raise ConfigError(
                f"{at(where)}{prefix}.{name} is not given; {cls.__name__} needs it"
                + (f" ({parameter})" if parameter else "")
            )
    return cls(**arguments, **built, **data)


def build_network(
    config: Mapping[str, Any], spec: DataSpec, trusted: Sequence[str], where: str | None, key: str
) -> nn.Module:
    """The network of `config` for data of `spec`, given `input_shape` and `num_outputs` (or
    `num_classes`) when it takes them by name, else `num_classes` through a function's
    `**kwargs` (torchvision's model builders); checked to take a batch of the data's inputs."""
    target = target_callable(config, NETWORK, trusted, where, key)
    names, open_ended = parameters(target)
    data: dict[str, Any] = {}
    if "input_shape" in names:
        data["input_shape"] = spec.input_shape
    if "num_outputs" in names:
        data["num_outputs"] = spec.num_outputs
    elif "num_classes" in names or open_ended:
        data["num_classes"] = spec.num_outputs
    net = build(config, NETWORK, trusted, where, key, **data)
    check_takes(net, spec, f"{key}._target_={config['_target_']}")
    return net


def check_takes(net: nn.Module, spec: DataSpec, name: str) -> None:
    """`ConfigError` unless `net` maps a batch of zeros shaped and typed as the data's inputs to
    one row of `spec.num_outputs` values per sample (one logit for two classes; for sequences, a
    row per step): a network that cannot take the data stops at start-up, not in `forward`."""
    training = net.training
    net.eval()
    try:
        with torch.no_grad():
            outputs = net(spec.example(2))
    except Exception as error:  # whatever the network raises on inputs it cannot take
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(
            f"{name} cannot take the data ({spec.describe()}): {reason}; choose a network "
            f"for such data"
        ) from None
    finally:
        net.train(training)
    binary = spec.task == "classification" and spec.num_outputs == 2
    widths = {spec.num_outputs, 1} if binary else {spec.num_outputs}  # one logit for 2 classes
    shape = tuple(getattr(outputs, "shape", ()))
    if not (len(shape) >= 2 and shape[0] == 2 and shape[-1] in widths):
        raise ConfigError(
            f"{name} gives outputs of shape {shape} for a batch of 2, but the data needs "
            f"{spec.num_outputs} per sample ({spec.describe()}); give the network the data's "
            f"number of outputs (num_outputs or num_classes)"
        )


def module_class(
    spec: DataSpec, module: str | None, trusted: Sequence[str], where: str | None, key: str
) -> type[L.LightningModule]:
    """The LightningModule that trains for `spec`: `module` (a class path), or the `TaskModule`
    subclass defined in `src/models/<spec.task>.py`."""
    config = {"_target_": module or task_module(spec.task)}
    return target_callable(config, MODULE, trusted, where, key, setting=key)


def task_module(task: str) -> str:
    """The class path of the `TaskModule` subclass that `src/models/<task>.py` defines."""
    found = []
    if task.isidentifier() and find_spec(f"src.models.{task}"):
        found = [
            f"{value.__module__}.{value.__qualname__}"
            for value in vars(import_module(f"src.models.{task}")).values()
            if isinstance(value, type)
            and issubclass(value, TaskModule)
            and value.__module__ == f"src.models.{task}"
        ]
    if len(found) != 1:
        raise ConfigError(
            f"the data's task {task!r} has no module: give src/models/{task}.py one TaskModule "
            f"subclass, or set model.module"
        )
    return found[0]
