"""A trained module and its datamodule rebuilt from a checkpoint alone: only plain data is loaded
(`weights_only=True`) and only the project's own classes are built (`src/slots.py`)."""

import inspect
from pathlib import Path
from typing import Any

from src.checkpoint_files import load_checkpoint
from src.data.spec import DataSpec
from src.data.tensor_datamodule import TensorDataModule
from src.errors import ConfigError
from src.models import module_class
from src.models.task_module import TaskModule
from src.slots import DATAMODULE, NETWORK, OPTIMIZER, SCHEDULER, build, target_class


def load_module(ckpt_path: str | Path) -> TaskModule:
    """The task module of a checkpoint, with its weights, ready to predict (not compiled)."""
    checkpoint = load_checkpoint(ckpt_path)
    where = f"checkpoint {ckpt_path}"
    hparams = module_hyperparameters(checkpoint, where)
    spec = DataSpec.from_dict(hparams["spec"])
    module = module_class(spec, checkpoint.get("task_module"), where)(
        **hparams | {"compile": False}
    )
    module.load_state_dict(checkpoint["state_dict"])
    return module


def load_datamodule(ckpt_path: str | Path, **overrides: Any) -> TensorDataModule:
    """The datamodule a checkpoint was trained on, rebuilt from the settings it carries, with
    `overrides` (another `data_dir`, `batch_size`, ...) on top."""
    where = f"checkpoint {ckpt_path}"
    settings = datamodule_hyperparameters(load_checkpoint(ckpt_path, mmap=True), where)
    return build(settings | overrides, DATAMODULE, where, "datamodule_hyper_parameters")


def datamodule_hyperparameters(checkpoint: dict[str, Any], where: str) -> dict[str, Any]:
    """The datamodule's settings saved in `checkpoint`, checked to build one of the project's
    datamodules with plain values; else `ConfigError` naming `where` and the key."""
    settings = checkpoint.get("datamodule_hyper_parameters")
    if not isinstance(settings, dict):
        raise ConfigError(f"{where} holds no data settings: give a checkpoint this template wrote")
    target_class(settings, DATAMODULE, where, "datamodule_hyper_parameters")
    return settings


def module_hyperparameters(checkpoint: dict[str, Any], where: str) -> dict[str, Any]:
    """The task module's arguments saved in `checkpoint`, checked before anything is built: the
    keys `TaskModule` takes, a data spec, and only the project's classes in each slot; else
    `ConfigError` naming `where` (the file) and the key."""
    hparams = checkpoint.get("hyper_parameters")
    if not isinstance(hparams, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise ConfigError(f"{where} holds no module: give a checkpoint this template wrote")
    unknown = set(hparams) - set(inspect.signature(TaskModule.__init__).parameters)
    if unknown or not isinstance(hparams.get("spec"), dict):
        what = f"unknown keys {sorted(unknown)}" if unknown else "no data spec"
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
