"""What the scripts that use a trained model share: its configs from the checkpoint, checks, safe
writes."""

from typing import TYPE_CHECKING

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from src.checkpoint_files import load_checkpoint
from src.errors import ConfigError
from src.slots import DATAMODULE, build

if TYPE_CHECKING:
    from src.data.tensor_datamodule import TensorDataModule
    from src.models.task_module import TaskModule


def use_trained_config(cfg: DictConfig, ckpt_path: str, sections: tuple[str, ...]) -> list[str]:
    """Set each of `sections` of `cfg` (`model`, `data`) to the config the checkpoint was
    trained with, which it carries, with this command line's overrides of that section on top;
    return the sections set.

    A section stays as composed when the command line picks its group (`data=mnist`,
    `model=cnn`): other data to evaluate on, or (for training) a choice `check_resume_settings`
    then refuses when it differs. The checkpoint's configs are data: only the project's classes
    are built from them (`src/slots.py`).
    """
    from src.models.loading import datamodule_hyperparameters, module_hyperparameters

    checkpoint = load_checkpoint(ckpt_path, mmap=True)
    where = f"checkpoint {ckpt_path}"
    trained = {}
    if "model" in sections:
        model = module_hyperparameters(checkpoint, where)
        trained["model"] = {k: v for k, v in model.items() if k != "spec"}
        trained["model"]["module"] = checkpoint.get("task_module")
    carried = checkpoint.get("datamodule_hyper_parameters") or {}
    if "data" in sections and "_target_" in carried:  # (older checkpoints carry no class)
        trained["data"] = datamodule_hyperparameters(checkpoint, where)
    overrides = OverridesParser.create().parse_overrides(list(HydraConfig.get().overrides.task))
    taken = [section for section in trained if all(o.key_or_group != section for o in overrides)]
    for section in taken:
        config = OmegaConf.create(trained[section])
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
    return taken


def compatible_datamodule(cfg: DictConfig, module: "TaskModule") -> "TensorDataModule":
    """The datamodule of `cfg.data`, or an error when it does not give what `module` takes."""
    datamodule = build(cfg.data, DATAMODULE)
    if datamodule.spec != module.spec:
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path} holds a model for {module.spec.describe()}, but the chosen "
            f"data gives {datamodule.spec.describe()}; choose the data it was trained on"
        )
    return datamodule
