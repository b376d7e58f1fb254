"""What the scripts that use a trained model share: the training run's data, checks, safe writes."""

import logging
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

if TYPE_CHECKING:
    from src.data.base import TensorDataModule
    from src.models.base import TaskModule

log = logging.getLogger(__name__)


def use_run_data(cfg: DictConfig, ckpt_path: str) -> None:
    """Set `cfg.data` to the data config of the run that wrote `ckpt_path`, with this command
    line's `data.*` overrides on top.

    `cfg.data` stays as composed when the command line picks `data=<option>` or when the
    checkpoint sits in no run directory. Interpolations (`${paths.data_dir}`, `${seed}`) resolve
    against this run's config.
    """
    run_file = Path(ckpt_path).parent.parent / ".hydra" / "config.yaml"  # <run>/checkpoints/
    overrides = OverridesParser.create().parse_overrides(list(HydraConfig.get().overrides.task))
    if not run_file.is_file() or any(o.key_or_group == "data" for o in overrides):
        return
    data = OmegaConf.load(run_file).data
    target_class(data, DATAMODULE, str(run_file))  # a file's config is data: checked first
    for override in overrides:
        if not override.key_or_group.startswith("data."):
            continue
        key = override.key_or_group.removeprefix("data.")
        if override.is_delete():
            parent, _, leaf = key.rpartition(".")
            (OmegaConf.select(data, parent) if parent else data).pop(leaf, None)
        else:
            OmegaConf.update(data, key, OmegaConf.select(cfg.data, key))
    with open_dict(cfg):
        cfg.data = data
    log.info(f"Data: the config of the run that wrote the checkpoint ({run_file})")


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
