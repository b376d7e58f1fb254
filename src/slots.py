"""What a config may build: in each slot, only the classes the project defines for it.

Hydra's `instantiate` calls whatever `_target_` a dict names, and a checkpoint's hyperparameters
or a run's saved config may come from anyone. So networks, optimizers, schedulers, datamodules
and task modules are built by `build`, which takes a class only from the slot's modules and only of
the slot's base class, with plain values as arguments of the types the class declares: a file's
config stays data, and a wrong key or value is one sentence naming it. To build a class from
elsewhere (an optimizer of another package), add its module to the slot here.
"""

import inspect
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from importlib import import_module
from typing import Any, get_type_hints

from omegaconf import DictConfig, OmegaConf
from pydantic import ConfigDict, TypeAdapter, ValidationError

from src.errors import ConfigError

# Hydra's keys that change how a node is built; a file's config may hold none of them
RESERVED_KEYS = ("_target_", "_args_", "_partial_", "_recursive_", "_convert_")
KEYWORDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
# declared types pydantic knows no schema for (torch.Tensor) are checked with isinstance
ANY_TYPE = ConfigDict(arbitrary_types_allowed=True)


@dataclass(frozen=True)
class Slot:
    """Where a built object goes: `key` (for messages), the modules its class may come from
    and its base class, as `module:Class`."""

    key: str
    modules: tuple[str, ...]
    base: str
    what: str  # what the slot holds, for messages

    def base_class(self) -> type:
        module, name = self.base.split(":")
        return getattr(import_module(module), name)


NETWORK = Slot("model.net", ("src.models.nets.",), "src.models.nets.network:Network", "a network")
OPTIMIZER = Slot("model.optimizer", ("torch.optim.",), "torch.optim:Optimizer", "an optimizer")
SCHEDULER = Slot(
    "model.scheduler",
    ("torch.optim.lr_scheduler.",),
    "torch.optim.lr_scheduler:LRScheduler",
    "a learning-rate scheduler",
)
DATAMODULE = Slot(
    "data", ("src.data.",), "src.data.tensor_datamodule:TensorDataModule", "a datamodule"
)
MODULE = Slot(
    "model.module", ("src.models.",), "src.models.task_module:TaskModule", "a task module"
)


def target_class(
    config: Mapping[str, Any] | DictConfig,
    slot: Slot,
    where: str = "the config",
    key: str | None = None,
) -> type:
    """The class `config` (at `key` of `where`, a file or "the config") may build in `slot`, its
    arguments checked to be plain values; else `ConfigError`, before anything else is imported."""
    if isinstance(config, DictConfig):
        config = OmegaConf.to_container(config, resolve=True)
    key = key or slot.key
    target = config.get("_target_")
    if not isinstance(target, str) or not target.startswith(slot.modules):
        modules = " or ".join(f"{m}*" for m in slot.modules)
        raise ConfigError(
            f"{where}: {key}._target_={target!r} is not {slot.what} of {modules}; only "
            f"those are built from a config"
        )
    for name, value in config.items():
        if name != "_target_" and (path := reserved_key(value, f"{key}.{name}")):
            raise ConfigError(
                f"{where}: {path} would build an object inside {key}; the arguments of "
                f"{slot.what} are plain values"
            )
    try:
        module, _, name = target.rpartition(".")
        cls = getattr(import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, slot.base_class())):
        raise ConfigError(
            f"{where}: {key}._target_={target} is not {slot.what} ({slot.base} or a "
            f"subclass); check the name"
        )
    return cls


def build(
    config: Mapping[str, Any] | DictConfig,
    slot: Slot,
    where: str = "the config",
    key: str | None = None,
    **kwargs: Any,
) -> Any:
    """`config`'s class called with its other keys and `kwargs`, once `class_and_arguments`
    has checked them."""
    cls, arguments = class_and_arguments(config, slot, where, key, given=kwargs)
    return cls(**arguments, **kwargs)


def class_and_arguments(
    config: Mapping[str, Any] | DictConfig,
    slot: Slot,
    where: str = "the config",
    key: str | None = None,
    given: Collection[str] = (),
) -> tuple[type, dict[str, Any]]:
    """`config`'s class (see `target_class`) and its other keys as arguments (see
    `checked_arguments`), for a `build` with the arguments named in `given` to come."""
    if isinstance(config, DictConfig):
        config = OmegaConf.to_container(config, resolve=True)
    cls = target_class(config, slot, where, key)
    arguments = {k: v for k, v in config.items() if k != "_target_"}
    return cls, checked_arguments(cls, arguments, where, key or slot.key, given)


def checked_arguments(
    cls: type, arguments: Mapping[str, Any], where: str, key: str, given: Collection[str] = ()
) -> dict[str, Any]:
    """`arguments` converted to the types `cls` declares for them (pydantic's lax rules: a list
    where a tuple is declared); `ConfigError` for the first one that `cls` does not take, that
    the project passes itself (`given`), or whose value does not fit, instead of a `TypeError`
    from deep inside the class."""
    names: dict[str, None] = {}
    types: dict[str, Any] = {}
    for klass in cls.__mro__:  # and the bases' arguments it passes on with **kwargs
        if "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name: None for p in parameters if p.kind in KEYWORDS and p.name != "self"}
        types = get_type_hints(klass.__init__) | types
        if all(p.kind is not p.VAR_KEYWORD for p in parameters):
            break
    settable = [name for name in names if name not in given]
    checked = {}
    for name, value in arguments.items():
        if name not in settable:
            raise ConfigError(
                f"{where}: {key}.{name} is not an argument of {cls.__name__} that a config "
                f"sets; it takes {', '.join(settable)}"
            )
        try:
            checked[name] = TypeAdapter(types.get(name, Any), config=ANY_TYPE).validate_python(
                value
            )
        except ValidationError as error:
            raise ConfigError(
                f"{where}: {key}.{name}={value!r} is invalid: {error.errors()[0]['msg'].lower()} "
                f"({cls.__name__} takes {inspect.formatannotation(types[name])}); fix it in the "
                f"config or on the command line ({key}.{name}=...)"
            ) from None
    return checked


def reserved_key(value: Any, path: str) -> str | None:
    """The path of the first of Hydra's `RESERVED_KEYS` anywhere in `value`, or None."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key in RESERVED_KEYS:
                return f"{path}.{key}"
            if found := reserved_key(item, f"{path}.{key}"):
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if found := reserved_key(item, f"{path}[{index}]"):
                return found
    return None
