"""What the scripts that use a trained model share: its configs from the checkpoint, checks."""

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from src.engine.checkpoint_files import RECORD, built_from, load_checkpoint
from src.engine.config import validate
from src.engine.slots import DATAMODULE, build, target_callable
from src.errors import ConfigError

if TYPE_CHECKING:
    import lightning as L

    from src.data.spec import DataSpec


def use_trained_config(cfg: DictConfig, ckpt_path: str, sections: tuple[str, ...]) -> list[str]:
    """Set each of `sections` of `cfg` (`model`, `data`) to the config the checkpoint was
    trained with, which it carries, with this command line's overrides of that section on top;
    return the sections set.

    A section stays as composed when the command line picks its group (`data=mnist`,
    `model=cnn`): other data to evaluate on, or (for training) a choice `check_resume_settings`
    then refuses when it differs. The checkpoint's configs are data: they are checked to name
    only classes the configuration trusts, of the right kind, with plain values, here, before
    anything is built; and `cfg` is validated (`validate`) with them.
    """
    from src.engine.loading import check_model_config, record_spec

    where = f"checkpoint {ckpt_path}"
    record = built_from(load_checkpoint(ckpt_path, mmap=True), where)
    trained = {section: record[section] for section in sections if record.get(section)}
    if "model" in trained:
        spec = record_spec(record, where)
        check_model_config(trained["model"], spec, cfg.trusted, where, f"{RECORD}.model")
    if "data" in trained:
        target_callable(trained["data"], DATAMODULE, cfg.trusted, where, f"{RECORD}.data")
    overrides = OverridesParser.create().parse_overrides(list(HydraConfig.get().overrides.task))
    if (
        "data" in sections
        and "data" not in trained
        and all(o.key_or_group != "data" for o in overrides)
    ):
        raise unrecorded_data(cfg, record_spec(record, where), where)
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
    validate(cfg)
    return taken


def unrecorded_data(cfg: DictConfig, spec: "DataSpec", where: str) -> ConfigError:
    """The error for a checkpoint that does not say which data it was trained on (an earlier
    version of the template wrote it), naming the data options that fit its model."""
    from src.engine.compatibility import data_giving

    options = " or ".join(f"data={option}" for option in data_giving(cfg, spec))
    return ConfigError(
        f"{where} does not record the data it was trained on (an earlier version of this "
        f"template wrote it); its model takes {spec.describe()}: add "
        f"{options or 'data=<the data it was trained on>'}"
    )


def trained_module(
    cfg: DictConfig, ckpt_path: str, method: str, command: str
) -> tuple["L.LightningModule", "DataSpec", "L.LightningDataModule"]:
    """The checkpoint's module (checked to have `method`, which `command` needs), the spec of
    the data it was trained on, and the datamodule of `cfg.data`, checked to give such data."""
    from src.engine.loading import load_module
    from src.engine.trainer import prepare_run

    prepare_run(cfg)
    module, spec = load_module(ckpt_path, cfg.trusted)
    check_provides(cfg, module, method, command)
    return module, spec, compatible_datamodule(cfg, spec)


def compatible_datamodule(cfg: DictConfig, spec: "DataSpec") -> "L.LightningDataModule":
    """The datamodule of `cfg.data`, or an error when it does not give data of `spec`, what the
    checkpoint's model was trained on."""
    from src.data.spec import spec_of

    datamodule = build(cfg.data, DATAMODULE, cfg.trusted)
    if (given := spec_of(datamodule)) != spec:
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path} holds a model for {spec.describe()}, but the chosen "
            f"data gives {given.describe()}; choose the data it was trained on"
        )
    return datamodule


def check_provides(cfg: DictConfig, module: "L.LightningModule", method: str, command: str) -> None:
    """`ConfigError` when the checkpoint's module lacks `method`, which `command` needs."""
    import lightning as L
    from lightning.pytorch.utilities.model_helpers import is_overridden

    if not is_overridden(method, module, parent=L.LightningModule):
        name = type(module).__name__
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path} holds a {name}, which has no {method}; {command} needs "
            f"one: give {name} a {method}"
        )


def check_output(
    output: Path, read: Sequence[Path], ours: Callable[[Path], bool], what: str, overwrite: bool
) -> None:
    """`ConfigError` unless the command may write `output`: never a folder or a file it reads
    (`read`: the checkpoint, the input), and an existing file only when `ours` says it is what
    this command writes (`what`: its earlier output) or with `overwrite=true`."""
    if output.is_dir():
        raise ConfigError(f"output={output} is a folder; give the path of the file to write")
    if any(output.resolve() == path.resolve() for path in read):
        raise ConfigError(f"output={output} is the file this command reads; give another path")
    if output.exists() and not overwrite and not ours(output):
        raise ConfigError(
            f"output={output} exists and is not {what}; give another path, or overwrite=true to "
            f"replace it"
        )
