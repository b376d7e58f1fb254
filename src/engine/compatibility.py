"""Refuse a model x data pair that cannot work, at start-up, in one sentence with alternatives."""

from collections.abc import Sequence

from hydra import compose
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from src.data.spec import DataSpec
from src.engine.slots import DATAMODULE, NETWORK, build, target_callable
from src.errors import ConfigError
from src.models.nets.network import Network


def check_compatible(cfg: DictConfig, spec: DataSpec) -> None:
    """Raise `ConfigError` when the project's network of `cfg.model` (a `Network`, which says
    which data it takes) cannot take data of `spec`, naming the models and data that would work.
    Other networks are tried on a batch when they are built (`src.engine.building.check_takes`)."""
    network = _network(cfg.model, cfg.trusted)
    if network is None or (reason := network.incompatibility(spec)) is None:
        return
    choices = HydraConfig.get().runtime.choices
    model, data = choices.get("model"), choices.get("data")
    models = [
        m for m in _options("model") if _takes(_network(_alone("model", m), cfg.trusted), spec)
    ]
    datas = [d for d in _options("data") if _takes(network, _spec(cfg, d))]
    raise ConfigError(
        f"model={model} cannot train on data={data} ({spec.describe()}): {reason}; "
        f"models that take data={data}: {', '.join(models) or 'none'}; "
        f"data that model={model} takes: {', '.join(datas) or 'none'}."
    )


def data_giving(cfg: DictConfig, spec: DataSpec) -> list[str]:
    """The options of the data group that give data of `spec` (as declared, in `cfg`'s paths)."""
    return [data for data in _options("data") if _spec(cfg, data) == spec]


def _network(model: DictConfig, trusted: Sequence[str]) -> type[Network] | None:
    """The class of the model's network when it is one of the project's `Network`s."""
    if not model.get("net"):
        return None
    target = target_callable(model.net, NETWORK, trusted)
    return target if isinstance(target, type) and issubclass(target, Network) else None


def _takes(network: type[Network] | None, spec: DataSpec | None) -> bool:
    return network is not None and spec is not None and network.incompatibility(spec) is None


def _options(group: str) -> list[str]:
    return sorted(GlobalHydra.instance().config_loader().get_group_options(group))


def _alone(group: str, option: str) -> DictConfig:
    """The `<group>=<option>` config alone: composed in a quarter of a whole config's time."""
    return compose(overrides=[f"+{group}={option}"])[group]


def _spec(cfg: DictConfig, data: str) -> DataSpec | None:
    """The spec `data=<data>` declares in the run's config (its paths and seed), if it declares
    one without more settings."""
    candidate = cfg.copy()
    candidate.data = _alone("data", data)
    try:
        spec = getattr(build(candidate.data, DATAMODULE, cfg.trusted), "spec", None)
    except (ConfigError, OmegaConfBaseException):  # it needs settings of its own (a root)
        return None
    return spec if isinstance(spec, DataSpec) else None
