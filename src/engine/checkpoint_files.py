"""Checkpoint files read safely: plain data only, and one sentence for a file that cannot be used.

Light to import (torch comes when a file is read), so the engine checks a checkpoint before
the heavy imports.
"""

import functools
import pickle
import zipfile
from pathlib import Path
from typing import Any

from src.errors import ConfigError


class CheckpointError(ConfigError):
    """A checkpoint file that cannot be used, and why (`reason`)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(
            f"checkpoint {path} cannot be used: {reason}; give a checkpoint this template wrote"
        )
        self.reason = reason


def load_checkpoint(path: str | Path, mmap: bool = False) -> dict[str, Any]:
    """`torch.load` a checkpoint as plain data only (`weights_only=True`): a file that is
    truncated, corrupt or carries code (a pickle that would run it) raises `CheckpointError`.

    Mapped (`mmap`), a file is read once in a command while it is unchanged: the checks that
    all ask about one checkpoint share the record (which they only read). A command starts
    afresh (`forget_checkpoints`)."""
    if not mmap:
        return _load(path, mmap=False)
    stat = Path(path).stat()
    version = (stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size)
    return _mapped(str(Path(path).resolve()), version)


@functools.lru_cache(maxsize=1)
def _mapped(path: str, version: tuple[int, ...]) -> dict[str, Any]:
    return _load(path, mmap=True)


def forget_checkpoints() -> None:
    """Drop the record `load_checkpoint` keeps: when a command starts, and before training
    replaces the file (the mapping would hold its disk space)."""
    _mapped.cache_clear()


def _load(path: str | Path, mmap: bool) -> dict[str, Any]:
    import torch

    if not zipfile.is_zipfile(path):
        raise CheckpointError(path, "it is truncated, or not a checkpoint torch.save wrote")
    with zipfile.ZipFile(path) as archive:
        if any(name.endswith("/constants.pkl") for name in archive.namelist()):
            raise CheckpointError(path, "it is a TorchScript model (an export), not a checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        reason = "it holds objects other than weights, which could run code and are never loaded"
        raise CheckpointError(path, reason) from error
    except Exception as error:  # zip and storage errors
        reason = str(error).strip().splitlines()[0]
        raise CheckpointError(path, f"it is corrupt ({reason})") from error


# where a checkpoint says what its model and data were built from (`built_from`)
RECORD = "built_from"


def built_from(checkpoint: dict[str, Any], where: str) -> dict[str, Any]:
    """What the checkpoint's model and data were built from, as plain values: `model` and `data`,
    the configs (`data` None when unknown), and `spec`, the data's `DataSpec.to_dict()`. Checkpoints
    of earlier versions carried them as the task module's and datamodule's hyperparameters.
    `ConfigError` naming `where` when the checkpoint holds no such record."""
    record = checkpoint.get(RECORD)
    if record is None and isinstance(checkpoint.get("hyper_parameters"), dict):
        hparams = checkpoint["hyper_parameters"]
        data = checkpoint.get("datamodule_hyper_parameters") or {}
        record = {
            "model": {k: v for k, v in hparams.items() if k != "spec"}
            | {"module": checkpoint.get("task_module")},
            "data": data if "_target_" in data else None,
            "spec": hparams.get("spec"),
        }
    if not (
        isinstance(record, dict)
        and isinstance(record.get("model"), dict)
        and isinstance(record.get("spec"), dict)
        and isinstance(record.get("data"), dict | None)
        and isinstance(checkpoint.get("state_dict"), dict)
    ):
        raise ConfigError(
            f"{where} says not what its model and data were built from; give a checkpoint this "
            f"template wrote"
        )
    return record
