"""A trained module rebuilt from a checkpoint alone: only plain data is loaded
(`weights_only=True`), and only classes the configuration trusts are built (`slots.py`)."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L

from src.data.spec import DataSpec
from src.engine.building import build_model, module_class
from src.engine.checkpoint_files import RECORD, built_from, load_checkpoint
from src.engine.slots import NETWORK, OPTIMIZER, SCHEDULER, at, target_callable
from src.errors import ConfigError
from src.models.task_module import LIGHTNING_SCHEDULER_KEYS


def load_module(
    ckpt_path: str | Path, trusted: Sequence[str]
) -> tuple[L.LightningModule, DataSpec]:
    """The training module of a checkpoint, with its weights, ready to predict (not compiled), and
    the spec of the data it was trained on."""
    checkpoint = load_checkpoint(ckpt_path)
    where = f"checkpoint {ckpt_path}"
    record = built_from(checkpoint, where)
    spec = record_spec(record, where)
    model = record["model"] | {"compile": False}
    module = build_model(model, spec, trusted, where, f"{RECORD}.model")
    module.load_state_dict(checkpoint["state_dict"])
    return module, spec


def record_spec(record: Mapping[str, Any], where: str) -> DataSpec:
    """The data spec of a checkpoint's record (see `built_from`)."""
    try:
        return DataSpec.from_dict(record["spec"])
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise ConfigError(f"{at(where)}{RECORD}.spec is not a data spec ({error!r})") from None


def check_model_config(
    model: Mapping[str, Any], spec: DataSpec, trusted: Sequence[str], where: str | None, prefix: str
) -> None:
    """`ConfigError` naming `where` and the key when a model config (read from a file) names a
    class the configuration does not trust, or one of the wrong kind, or gives one an object
    rather than plain values; nothing is built."""
    module_class(spec, model.get("module"), trusted, where, f"{prefix}.module")
    for name, slot in (("net", NETWORK), ("optimizer", OPTIMIZER), ("scheduler", SCHEDULER)):
        if config := model.get(name):
            if not isinstance(config, dict):
                raise ConfigError(f"{at(where)}{prefix}.{name} is not a config")
            if slot is SCHEDULER:
                config = {k: v for k, v in config.items() if k not in LIGHTNING_SCHEDULER_KEYS}
            target_callable(config, slot, trusted, where, f"{prefix}.{name}")
