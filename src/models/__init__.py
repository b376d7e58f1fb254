"""Task modules (how to train) around networks (what to train).

A task's module lives in `src/models/<task>.py`: the data's task (`DataSpec.task`) picks it, or
`model.module` names another one.
"""

from importlib import import_module
from importlib.util import find_spec
from typing import Any

from src.data.spec import DataSpec
from src.errors import ConfigError
from src.models.task_module import TaskModule
from src.slots import MODULE, target_class


def module_class(spec: DataSpec, module: str | None = None, where: str = "the config") -> type:
    """The `TaskModule` subclass that trains for `spec`: `module` (a class path), or the one
    defined in `src/models/<spec.task>.py`."""
    return target_class(
        {"_target_": module or task_module(spec.task)}, MODULE, where, "model.module"
    )


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


def build_module(model: dict[str, Any], spec: DataSpec) -> TaskModule:
    """The task module for `spec` (see `module_class`), training the network, optimizer and
    scheduler of `model` as its runtime options say (`configs/model/runtime/`)."""
    options = {k: v for k, v in model.items() if k != "module"}
    return module_class(spec, model.get("module"))(spec=spec.to_dict(), **options)
