"""What a config may build: in each slot, a class (or factory) of the kind the slot holds, from
the modules the configuration trusts.

Hydra's `instantiate` calls whatever `_target_` a dict names, and a checkpoint or a run's saved
overrides may come from anyone. So networks, optimizers, schedulers, datamodules and training
modules are built by `build`, which imports a `_target_` only from the modules listed in the
`trusted` setting (`configs/trusted.yaml`: the project's `src`, `torch.optim`,
`torchvision.models` by default; the command line may name others), takes only a class of the
slot's kind, and gives it plain values of the types it declares: a file's config stays data, and
a wrong key or value is one sentence naming it.
"""

import inspect
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from importlib import import_module
from typing import Any, get_type_hints

from omegaconf import DictConfig, OmegaConf
from pydantic import ConfigDict, TypeAdapter, ValidationError

from src.errors import ConfigError

# Hydra's keys that change how a node is built; a built object's arguments hold none of them
RESERVED_KEYS = ("_target_", "_args_", "_partial_", "_recursive_", "_convert_")
KEYWORDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
# declared types pydantic knows no schema for (torch.Tensor) are checked with isinstance
ANY_TYPE = ConfigDict(arbitrary_types_allowed=True)
TRUST_SETTING = "trusted (configs/trusted.yaml, or trusted=[...] on the command line)"
# the options of how a model runs that every model config has (configs/model/runtime/), with their
# defaults: a module need not take one left at its default, and a resume may change them
RUNTIME_OPTIONS = {"nonfinite_loss": "stop", "compile": False, "channels_last": False}


@dataclass(frozen=True)
class Slot:
    """Where a built object goes: `key` (for messages), what it holds, its base class as
    `module:Class` (imported only when a class is checked) and, with `functions`, whether a
    function annotated to return such an object may build it too; `instead` says what else to
    give."""

    key: str
    what: str
    base: str
    instead: str
    functions: bool = False

    def base_class(self) -> type:
        module, name = self.base.split(":")
        return getattr(import_module(module), name)


NETWORK = Slot(
    "model.net",
    "a network",
    "torch.nn:Module",
    "an nn.Module class, or a function annotated to return one (torchvision.models.resnet18)",
    functions=True,
)
OPTIMIZER = Slot(
    "model.optimizer",
    "an optimizer",
    "torch.optim:Optimizer",
    "a torch.optim.Optimizer subclass, or model/optimizer=<an option of configs/model/optimizer/>",
)
SCHEDULER = Slot(
    "model.scheduler",
    "a learning-rate scheduler",
    "torch.optim.lr_scheduler:LRScheduler",
    "a torch.optim.lr_scheduler.LRScheduler subclass, or model/scheduler=<an option>",
)
DATAMODULE = Slot(
    "data",
    "a datamodule",
    "lightning.pytorch:LightningDataModule",
    "a LightningDataModule subclass, or data=<an option of configs/data/>",
)
MODULE = Slot(
    "model.module",
    "a training module",
    "lightning.pytorch:LightningModule",
    "a LightningModule subclass, or null for the data's task module",
)


def at(where: str | None) -> str:
    """The start of an error about something read from `where` (a file), or from the config."""
    return f"{where}: " if where else ""


def is_trusted(target: str, trusted: Sequence[str]) -> bool:
    """Whether the dotted path `target` lies in one of the `trusted` modules (or is one of them)."""
    return any(target == entry or target.startswith(f"{entry}.") for entry in trusted)


def check_trusted(target: str, trusted: Sequence[str], where: str | None, setting: str) -> None:
    """`ConfigError` naming the setting that would allow `target` (named by `setting` of
    `where`), unless it is trusted."""
    if not is_trusted(target, trusted):
        module = target.rpartition(".")[0] or target
        raise ConfigError(
            f"{at(where)}{setting}={target} is not in a module the configuration trusts "
            f"({', '.join(trusted)}); to build it, add {module} to {TRUST_SETTING}"
        )


def target_callable(
    config: Mapping[str, Any] | DictConfig,
    slot: Slot,
    trusted: Sequence[str],
    where: str | None = None,
    key: str | None = None,
    setting: str | None = None,
) -> Callable:
    """The class (or, where the slot takes one, function) `config` (at `key` of `where`, a file or
    "the config") may build in `slot`, its other keys checked to be plain values; else
    `ConfigError`. Nothing is imported from a module the configuration does not trust. Errors
    name the target as `setting` (default `<key>._target_`)."""
    if isinstance(config, DictConfig):
        config = OmegaConf.to_container(config, resolve=True)
    key = key or slot.key
    setting = setting or f"{key}._target_"
    target = config.get("_target_")
    if not isinstance(target, str) or not target:
        raise ConfigError(f"{at(where)}{setting} is not given; name {slot.instead}")
    check_trusted(target, trusted, where, setting)
    for name, value in config.items():
        if name != "_target_" and (path := reserved_key(value, f"{key}.{name}")):
            raise ConfigError(
                f"{at(where)}{path} would build an object inside {key}; the arguments of "
                f"{slot.what} are plain values"
            )
    module, _, name = target.rpartition(".")
    try:
        found = getattr(import_module(module), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ConfigError(
            f"{at(where)}{setting}={target} cannot be imported ({error}); name {slot.instead}"
        ) from None
    made = found if isinstance(found, type) else slot.functions and returned_class(found)
    if isinstance(made, type) and issubclass(made, slot.base_class()):
        return found
    raise ConfigError(f"{at(where)}{setting}={target} is not {slot.what}; name {slot.instead}")


def returned_class(function: Any) -> type | None:
    """The class a function's return annotation names (torchvision's `resnet18` -> `ResNet`), or
    None: a function is built from a config only when it says it returns an object of the slot's
    kind, so no other function of a trusted module (one that writes files, say) is called."""
    try:
        returned = get_type_hints(function).get("return") if inspect.isroutine(function) else None
    except (NameError, TypeError):  # an annotation that does not resolve
        return None
    return returned if isinstance(returned, type) else None


def build(
    config: Mapping[str, Any] | DictConfig,
    slot: Slot,
    trusted: Sequence[str],
    where: str | None = None,
    key: str | None = None,
    **given: Any,
) -> Any:
    """`config`'s class (see `target_callable`) called with its other keys, checked by
    `checked_arguments`, and `given`; a function's result is checked to be of the slot's kind."""
    target, arguments = class_and_arguments(config, slot, trusted, where, key, given)
    built = target(**arguments, **given)
    if not isinstance(built, slot.base_class()):
        raise ConfigError(
            f"{at(where)}{key or slot.key}._target_={config['_target_']} returned a "
            f"{type(built).__name__}, not {slot.what}; name {slot.instead}"
        )
    return built


def factory(
    config: Mapping[str, Any] | DictConfig,
    slot: Slot,
    trusted: Sequence[str],
    where: str | None = None,
    key: str | None = None,
    later: Collection[str] = (),
) -> partial:
    """`config`'s class with its checked arguments, to be called with those named in `later`
    (an optimizer's `params`, a scheduler's `optimizer`) once they exist."""
    target, arguments = class_and_arguments(config, slot, trusted, where, key, later)
    return partial(target, **arguments)


def class_and_arguments(
    config: Mapping[str, Any] | DictConfig,
    slot: Slot,
    trusted: Sequence[str],
    where: str | None = None,
    key: str | None = None,
    given: Collection[str] = (),
) -> tuple[Callable, dict[str, Any]]:
    """`config`'s class (see `target_callable`) and its other keys as arguments (see
    `checked_arguments`), for a call with the arguments named in `given` to come."""
    if isinstance(config, DictConfig):
        config = OmegaConf.to_container(config, resolve=True)
    target = target_callable(config, slot, trusted, where, key)
    arguments = {k: v for k, v in config.items() if k != "_target_"}
    checked = checked_arguments(target, arguments, where, key or slot.key, given)
    for name, annotation in required_parameters(target).items():
        if name not in checked and name not in given:
            raise ConfigError(
                f"{at(where)}{key or slot.key}.{name} is not given; {target.__name__} needs it"
                + (f" ({annotation})" if annotation else "")
            )
    return target, checked


def parameters(target: Callable) -> tuple[dict[str, Any], bool]:
    """The keyword arguments `target` takes, with their declared types, and whether it takes
    any others (a function's `**kwargs`; a class's when no base says which it passes on)."""
    if not isinstance(target, type):
        signature = inspect.signature(target)
        hints = get_type_hints(target)
        names = {p.name: hints.get(p.name, Any) for p in signature.parameters.values()}
        open_ended = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
        kinds = {p.name: p.kind for p in signature.parameters.values()}
        return {n: t for n, t in names.items() if kinds[n] in KEYWORDS}, open_ended
    names, types = {}, {}
    for klass in target.__mro__:  # and the bases' arguments it passes on with **kwargs
        if "__init__" not in vars(klass):
            continue
        values = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name: None for p in values if p.kind in KEYWORDS and p.name != "self"}
        types = get_type_hints(klass.__init__) | types
        if all(p.kind is not p.VAR_KEYWORD for p in values):
            break
    return {name: types.get(name, Any) for name in names}, False


def checked_arguments(
    target: Callable,
    arguments: Mapping[str, Any],
    where: str | None,
    key: str,
    given: Collection[str] = (),
) -> dict[str, Any]:
    """`arguments` converted to the types `target` declares for them (pydantic's lax rules: a
    list where a tuple is declared); `ConfigError` for the first one that `target` does not take,
    that the project passes itself (`given`), or whose value does not fit, instead of a
    `TypeError` from deep inside the class."""
    types, open_ended = parameters(target)
    settable = [name for name in types if name not in given]
    checked = {}
    for name, value in arguments.items():
        if name in given:
            raise ConfigError(
                f"{at(where)}{key}.{name} is given by the template (from the data, or once "
                f"built); remove it from the config"
            )
        if name not in settable and not open_ended:
            raise ConfigError(
                f"{at(where)}{key}.{name} is not an argument of {target.__name__} that a config "
                f"sets; it takes {', '.join(settable) or 'none'}"
            )
        try:
            adapter = TypeAdapter(types.get(name, Any), config=ANY_TYPE)
            checked[name] = adapter.validate_python(value)
        except ValidationError as error:
            declared = inspect.formatannotation(types.get(name, Any))
            raise ConfigError(
                f"{at(where)}{key}.{name}={value!r} is invalid: {error.errors()[0]['msg'].lower()} "
                f"({target.__name__} takes {declared}); fix it in the config or on the command "
                f"line ({key}.{name}=...)"
            ) from None
    return checked


def required_parameters(target: Callable) -> dict[str, str]:
    """The keyword arguments `target` (a class's `__init__`, or a function) needs, that is those
    without a default, with their annotations ("" where there is none)."""
    signature = inspect.signature(target.__init__ if isinstance(target, type) else target)
    return {
        p.name: "" if p.annotation is p.empty else inspect.formatannotation(p.annotation)
        for p in signature.parameters.values()
        if p.name != "self" and p.default is p.empty and p.kind in KEYWORDS
    }


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


def targets(value: Any, path: str) -> list[tuple[str, Any]]:
    """Every `_target_` anywhere in `value`, as (path of its node, what it names)."""
    found = []
    if isinstance(value, Mapping):
        if "_target_" in value:
            found.append((path, value["_target_"]))
        for key, item in value.items():
            found += targets(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found += targets(item, f"{path}[{index}]")
    return found
