"""Config checks that run before torch is imported, so bad input fails in a second."""

import copy
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from omegaconf import DictConfig, OmegaConf, open_dict
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    field_validator,
)

from src.errors import ConfigError

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = PROJECT_ROOT / "configs"


class _Open(BaseModel):
    """A section whose listed keys are checked and whose other keys pass through."""

    model_config = ConfigDict(extra="allow")


class _Data(_Open):
    batch_size: PositiveInt | None = None
    num_workers: NonNegativeInt = 0


class _Optimizer(_Open):
    lr: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    weight_decay: float = Field(default=0.0, ge=0, allow_inf_nan=False)


Section = dict[str, Any]  # a config (a network's, a callback's, ...), not a single value


class _Model(_Open):
    net: Section | None = None
    optimizer: _Optimizer | None = None
    scheduler: Section | None = None
    nonfinite_loss: Literal["stop", "skip"] = "stop"
    compile: bool = False
    channels_last: bool = False


class _Trainer(_Open):
    max_epochs: int | None = Field(default=None, ge=-1)
    min_epochs: NonNegativeInt | None = None
    max_steps: int = Field(default=-1, ge=-1)
    log_every_n_steps: PositiveInt = 50

    @field_validator("max_epochs", "max_steps")
    @classmethod
    def _trains_something(cls, value: int | None) -> int | None:
        if value == 0:
            raise ValueError("0 trains nothing: give a positive number, or -1 for no limit")
        return value


class _Run(_Open):
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)  # what NumPy's seed takes
    threads: PositiveInt | Literal["auto"] = "auto"
    data: _Data | None = None
    model: _Model | None = None
    trainer: _Trainer | None = None
    callbacks: dict[str, Section | None] | None = None
    logger: dict[str, Section | None] | None = None


def is_config_group(key: str) -> bool:
    """Whether `key` (`model`, `model/optimizer`) names a config group: a folder of `configs/`."""
    return (CONFIG_DIR / key).is_dir()


def group_options(group: str) -> list[str]:
    """The options of a config group: its YAML files' names."""
    return sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))


def is_option(group: str, value: Any) -> bool:
    """Whether `value` names an option of the config group `group` (null: none, always one)."""
    if value is None:
        return True
    return isinstance(value, str) and Path(value).name == value and value in group_options(group)


def check_group_choices(argv: list[str]) -> None:
    """Raise `SystemExit` with one sentence when a command-line argument picks an option that a
    config group lacks (`model=nope`), naming the options it has (Hydra's own message adds its
    search path); other mistakes are left to Hydra and `validate`."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for arg in argv[1:]:
        try:
            override = parser.parse_override(arg)
        except Exception:  # not an override, or a malformed one: Hydra says so
            continue
        group, value = override.key_or_group, override.value()
        if group.startswith("hydra/"):  # also Hydra's plugins' options
            continue
        if value is None or isinstance(value, int | float):  # model=1, logger=null
            value = "null" if value is None else str(value)
        if not is_config_group(group) or not isinstance(value, str) or is_option(group, value):
            continue
        options = ", ".join(group_options(group))
        raise SystemExit(
            f"{override.key_or_group}={value}: configs/{override.key_or_group}/ has no such "
            f"option; choose one of {options}"
        )


def fresh_targets(argv: list[str]) -> list[str]:
    """`argv` with each config node whose `_target_` it sets (`model.net._target_=X`) deleted and
    added afresh with that `_target_` and the command line's other keys for it (`~model.net
    +model.net._target_=X +model.net.<key>=...`): the composed config's keys there were arguments
    of the class it replaces. Hydra then composes, prints and saves the config that runs."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType

    parser = OverridesParser.create()
    parsed = {}
    for arg in argv[1:]:
        try:
            parsed[arg] = parser.parse_override(arg)
        except Exception:  # not an override, or a malformed one: Hydra says so
            continue
    changed = [o.key_or_group for o in parsed.values() if o.type == OverrideType.CHANGE]
    nodes = [key.removesuffix("._target_") for key in changed if key.endswith("._target_")]
    result, done = [argv[0]], set()
    for arg in argv[1:]:
        override = parsed.get(arg)
        key = override.key_or_group if override else ""
        node = next((n for n in nodes if key.startswith(f"{n}.")), None)
        if node is None or override.type != OverrideType.CHANGE:
            result.append(arg)
        elif node not in done:
            done.add(node)
            ours = [
                a
                for a, o in parsed.items()
                if o.type == OverrideType.CHANGE and o.key_or_group.startswith(f"{node}.")
            ]
            ours.sort(key=lambda a: not parsed[a].key_or_group.endswith("._target_"))
            result += [f"~{node}", *(f"+{a}" for a in ours)]
    return result


def check_given(cfg: DictConfig) -> None:
    """Raise `ConfigError` naming the first value the config leaves to the command line (`???`,
    such as `ckpt_path` for eval.py), before anything reads it."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"{missing[0]} is not given; add {missing[0]}=... to the command line")


def validate(cfg: DictConfig) -> None:
    """Check the keys every run relies on; raise `ConfigError` naming the first bad one."""
    values = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    try:
        _Run.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        if first["type"] == "missing":
            key = ".".join(map(str, first["loc"]))
            raise ConfigError(f"{key} is not given; add {key}=... to the command line") from None
        path, value = _key_path(values, first["loc"])
        key, group = ".".join(path), "/".join(path)
        fix = f"fix it in the config or on the command line ({key}=...)"
        if isinstance(value, str) and is_option(group, value):
            fix = f"to choose configs/{group}/{value}.yaml, write {group}={value}"
        raise ConfigError(f"{key}={value!r} is invalid: {_reason(first['msg'])}; {fix}") from None


def check_validation(cfg: DictConfig) -> None:
    """Raise `ConfigError` when training runs no validation (`trainer.limit_val_batches=0`) but
    judges the run by a validation metric (`monitor`, `val/...`), which then is never logged,
    or when a plateau schedule has no metric to step on; say once what runs without
    validation leave out."""
    monitor, trainer = cfg.get("monitor"), cfg.get("trainer") or {}
    validates = trainer.get("limit_val_batches") != 0
    if cfg.get("train") and str(monitor).startswith("val") and not validates:
        raise ConfigError(
            f"monitor={monitor} can never be logged: trainer.limit_val_batches=0 runs no "
            f"validation, so the run would have no result; give validation batches, or "
            f"monitor=null (no best checkpoint, early stopping or plateau)"
        )
    if cfg.get("train") and not validates:
        log.warning(
            "No validation (trainer.limit_val_batches=0): the checkpoint kept and tested is the "
            "last epoch's, and no early stopping or plateau schedule runs"
        )
    scheduler = OmegaConf.select(cfg, "model.scheduler") or {}
    plateau = str(scheduler.get("_target_")).endswith("ReduceLROnPlateau")
    if plateau and not scheduler.get("monitor"):
        raise ConfigError(
            "model.scheduler.monitor is null, and a ReduceLROnPlateau schedule steps on a "
            "monitored metric; give monitor=<a metric> or choose another model/scheduler"
        )


def _reason(message: str) -> str:
    """Pydantic's message for a failed check, as the middle of a sentence."""
    message = message.removeprefix("Value error, ").split(" or instance of ")[0]
    return message.lower()


def _key_path(values: dict[str, Any], loc: tuple) -> tuple[list[str], Any]:
    """The config keys along pydantic's error location (which may also name a union's member)
    and the value there."""
    path = []
    for part in loc:
        if not isinstance(values, dict) or part not in values:
            break
        path.append(str(part))
        values = values[part]
    return path, values


def compose_run(
    overrides: Sequence[str], output_dir: Path, config_name: str = "train"
) -> DictConfig:
    """A config composed as `@hydra.main` would, for runs started from Python (tests, scripts).

    Call inside `hydra.initialize_config_dir(str(CONFIG_DIR), version_base="1.3")`; the run
    writes into `output_dir`.
    """
    from hydra import compose
    from hydra.core.hydra_config import HydraConfig

    cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.config_name = config_name
    HydraConfig.instance().set_config(cfg)
    job_cfg = copy.deepcopy(cfg)  # as in a job: only Hydra itself sees the hydra node
    with open_dict(job_cfg):
        del job_cfg.hydra
    return job_cfg
