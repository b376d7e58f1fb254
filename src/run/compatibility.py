"""Refuse a model x data pair that cannot work, at start-up, in one sentence with alternatives."""

from hydra import compose
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from src.data.spec import DataSpec
from src.errors import ConfigError
from src.slots import DATAMODULE, NETWORK, build, target_class


def check_compatible(cfg: DictConfig, spec: DataSpec) -> None:
    """Raise `ConfigError` when the network of `cfg.model` cannot take data of `spec`."""
    reason = _network(cfg).incompatibility(spec)
    if reason is None:
        return
    choices = HydraConfig.get().runtime.choices
    model, data = choices.get("model"), choices.get("data")
    network = _network(cfg)
    models = [
        m for m in _options("model") if _network(_alone("model", m)).incompatibility(spec) is None
    ]
    datas = [d for d in _options("data") if network.incompatibility(_spec(cfg, d)) is None]
    raise ConfigError(
        f"model={model} cannot train on data={data} ({spec.describe()}): {reason}; "
        f"models that take data={data}: {', '.join(models) or 'none'}; "
        f"data that model={model} takes: {', '.join(datas) or 'none'}."
    )


def _network(cfg: DictConfig) -> type:
    return target_class(cfg.model.net, NETWORK)


def _options(group: str) -> list[str]:
    return sorted(GlobalHydra.instance().config_loader().get_group_options(group))


def _alone(group: str, option: str) -> DictConfig:
    """A config of `<group>=<option>` alone: composed in a quarter of a whole config's time."""
    return compose(overrides=[f"+{group}={option}"])


def _spec(cfg: DictConfig, data: str) -> DataSpec:
    """The spec of `data=<data>` in the run's config (its paths and seed)."""
    candidate = cfg.copy()
    candidate.data = _alone("data", data).data
    return build(candidate.data, DATAMODULE).spec
