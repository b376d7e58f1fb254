"""Task modules (how to train) around networks (what to train); the data's task picks the module."""

from pathlib import Path
from typing import Any

from src.data.spec import DataSpec
from src.models.base import TaskModule
from src.models.classification import ClassificationModule
from src.models.regression import RegressionModule
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
    """Rebuild a task module from a checkpoint alone, loading nothing but plain data."""
    checkpoint = load_checkpoint(ckpt_path)
    hparams = checkpoint["hyper_parameters"] | {"compile": False}  # compiling is for training
    module = TASK_MODULES[hparams["spec"]["task"]](**hparams)
    module.load_state_dict(checkpoint["state_dict"])
    return module
