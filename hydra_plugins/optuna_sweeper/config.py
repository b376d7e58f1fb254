"""The sweeper's structured config, registered as `hydra/sweeper=optuna_asktell` (a name of its
own: Hydra's official Optuna plugin registers `optuna`)."""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hydra.core.config_store import ConfigStore


class Sampler(StrEnum):
    tpe = "tpe"
    random = "random"


@dataclass
class OptunaSweeperConf:
    """`params` maps override keys to sweeps in Hydra's grammar, e.g. `choice(32, 64)`."""

    _target_: str = "hydra_plugins.optuna_sweeper.optuna_sweeper.OptunaSweeper"
    # min or max (or Optuna's minimize, maximize); the configs pass ${monitor_mode}
    direction: str = "min"
    n_trials: int = 20
    # trials asked, launched (through hydra/launcher) and told together
    n_jobs: int = 1
    sampler: Sampler = Sampler.tpe
    seed: int | None = None
    # null: the sweep directory's name
    study_name: str | None = None
    # an Optuna database URL, e.g. sqlite:///logs/optuna.db, which many sweeps may share; null:
    # <sweep dir>/optuna.db, so that `-m resume=<sweep dir>` continues the search
    storage: str | None = None
    # seconds between the heartbeats of a running trial; a trial that misses them for
    # 2 x heartbeat_interval (its process died) is failed and run again
    heartbeat_interval: int = 30
    # e.g. {_target_: optuna.pruners.MedianPruner}; needs a storage and optuna-integration
    pruner: Any = None
    params: dict[str, str] = field(default_factory=dict)


ConfigStore.instance().store(
    group="hydra/sweeper", name="optuna_asktell", node=OptunaSweeperConf, provider="optuna_sweeper"
)
