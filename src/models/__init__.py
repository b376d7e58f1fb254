"""Task modules (how to train) around networks (what to train); the data's task picks the module."""

import inspect
from pathlib import Path
from typing import Any

from src.data.spec import DataSpec
from src.errors import ConfigError
from src.models.base import TaskModule
from src.models.classification import ClassificationModule
from src.models.regression import RegressionModule
from src.slots import NETWORK, OPTIMIZER, SCHEDULER, target_class
from src.utils.checkpoints import load_checkpoint

TASK_MODULES: dict[str, type[TaskModule]] = {
    "classification": ClassificationModule,
    "regression": RegressionModule,
}


def build_module(model: dict[str, Any], spec: DataSpec) -> TaskModule:
    """The task module for `spec.task`, training the network, optimizer and scheduler of `model`
    as its runtime options say (`configs/model/runtime/`)."""
    return TASK_MODULES[spec.task](spec=spec.to_dict(), **model)


def load_module(ckpt_path: str | Path) -> TaskModule:
    """Rebuild a task module from a checkpoint alone, loading nothing but plain data and
    building only the project's own classes (`src/slots.py`)."""
    checkpoint = load_checkpoint(ckpt_path)
    hparams = module_hyperparameters(checkpoint, f"checkpoint {ckpt_path}")
    module = TASK_MODULES[hparams["spec"]["task"]](**hparams | {"compile": False})
    module.load_state_dict(checkpoint["state_dict"])
    return module


def module_hyperparameters(checkpoint: dict[str, Any], where: str) -> dict[str, Any]:
    """The task module's arguments saved in `checkpoint`, checked before anything is built: the
    keys `TaskModule` takes, a known task, and only the project's classes in each slot; else
    `ConfigError` naming `where` (the file) and the key."""
    hparams = checkpoint.get("hyper_parameters")
    if not isinstance(hparams, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise ConfigError(f"{where} holds no module: give a checkpoint this template wrote")
    unknown = set(hparams) - set(inspect.signature(TaskModule.__init__).parameters)
    task = hparams.get("spec", {}).get("task") if isinstance(hparams.get("spec"), dict) else None
    if unknown or task not in TASK_MODULES:
        what = f"unknown keys {sorted(unknown)}" if unknown else f"an unknown task {task!r}"
        raise ConfigError(
            f"{where}: hyper_parameters has {what}; give a checkpoint this template wrote"
        )
    for name, slot in (("net", NETWORK), ("optimizer", OPTIMIZER), ("scheduler", SCHEDULER)):
        config = hparams.get(name)
        if config or name != "scheduler":
            if not isinstance(config, dict):
                raise ConfigError(f"{where}: hyper_parameters.{name} is not a config")
            target_class(config, slot, where, f"hyper_parameters.{name}")
    return hparams
