"""What the scripts that use a trained model share: its configs from the checkpoint, checks, safe
writes."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from src.errors import ConfigError
from src.slots import DATAMODULE, build, target_class
from src.utils.checkpoints import load_checkpoint

if TYPE_CHECKING:
    from src.data.base import TensorDataModule
    from src.models.base import TaskModule


def use_trained_config(cfg: DictConfig, ckpt_path: str, sections: tuple[str, ...]) -> None:
    """Set each of `sections` of `cfg` (`model`, `data`) to the config the checkpoint was
    trained with, which it carries, with this command line's overrides of that section on top.

    A section stays as composed when the command line picks its group (`data=mnist`,
    `model=cnn`): other data to evaluate on, or (for training) a choice `check_resume_settings`
    then refuses when it differs. The checkpoint's configs are data: only the project's classes
    are built from them (`src/slots.py`).
    """
    from src.models import module_hyperparameters

    checkpoint = load_checkpoint(ckpt_path, mmap=True)
    where = f"checkpoint {ckpt_path}"
    trained = {}
    if "model" in sections:
        model = module_hyperparameters(checkpoint, where)
        trained["model"] = {k: v for k, v in model.items() if k != "spec"}
    data = checkpoint.get("datamodule_hyper_parameters") or {}
    if "data" in sections and "_target_" in data:  # (checkpoints from before it carried it: none)
        target_class(data, DATAMODULE, where, "datamodule_hyper_parameters")
        trained["data"] = data
    overrides = OverridesParser.create().parse_overrides(list(HydraConfig.get().overrides.task))
    for section, values in trained.items():
        if any(o.key_or_group == section for o in overrides):
            continue
        config = OmegaConf.create(values)
        for override in overrides:
            key = override.key_or_group
            if key.startswith(f"{section}/"):  # a sub-group: model/optimizer=sgd
                key = key.replace("/", ".")
            elif not key.startswith(f"{section}."):
                continue
            key = key.removeprefix(f"{section}.")
            if override.is_delete():
                parent, _, leaf = key.rpartition(".")
                (OmegaConf.select(config, parent) if parent else config).pop(leaf, None)
            else:
                OmegaConf.update(config, key, OmegaConf.select(cfg[section], key), merge=False)
        with open_dict(cfg):
            cfg[section] = config


def compatible_datamodule(cfg: DictConfig, module: "TaskModule") -> "TensorDataModule":
    """The datamodule of `cfg.data`, or an error when it does not give what `module` takes."""
    datamodule = build(cfg.data, DATAMODULE)
    if datamodule.spec != module.spec:
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path} holds a model for {module.spec.describe()}, but the chosen "
            f"data gives {datamodule.spec.describe()}; choose the data it was trained on"
        )
    return datamodule


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary path next to `path` for the block to write, moved onto `path` only when the
    block succeeds, so a failure never leaves a half-written result behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
