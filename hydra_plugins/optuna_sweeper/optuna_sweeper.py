"""The sweeper: asks Optuna for trials, runs them with Hydra's launcher, tells the results."""

import logging
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.errors import CompactHydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.optuna_sweeper.config import Sampler

DIRECTIONS = {"min": "minimize", "max": "maximize", "minimize": "minimize", "maximize": "maximize"}

log = logging.getLogger(__name__)


class TrialsFailedError(RuntimeError, CompactHydraException):
    """Some trials of the sweep failed; the others ran to the end. Hydra prints its message,
    which names each failure, without a traceback of the sweeper."""


class OptunaSweeper(Sweeper):
    """Runs `n_trials` trials, `n_jobs` at a time, through the configured `hydra/launcher`."""

    def __init__(
        self,
        direction: str,
        n_trials: int,
        n_jobs: int,
        sampler: Sampler,
        seed: int | None,
        study_name: str | None,
        storage: str | None,
        heartbeat_interval: int,
        pruner: Any,
        params: dict[str, str],
    ) -> None:
        if n_jobs < 1 or n_trials < 0 or heartbeat_interval < 1:
            raise ValueError(
                f"need n_jobs >= 1, n_trials >= 0 and heartbeat_interval >= 1, got {n_jobs}, "
                f"{n_trials} and {heartbeat_interval}"
            )
        if pruner is not None and find_spec("optuna_integration") is None:
            raise ImportError("pruning needs optuna-integration: pip install optuna-integration")
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {sorted(DIRECTIONS)}, got {direction!r}")
        self.direction, self.sampler = DIRECTIONS[direction], Sampler(sampler).value
        self.n_trials, self.n_jobs, self.seed = n_trials, n_jobs, seed
        self.study_name, self.storage = study_name, storage
        self.heartbeat_interval = heartbeat_interval
        # the pruner itself is built in each job, from this sweeper's config
        self.prune, self.params = pruner is not None, params

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.sweep_dir = Path(config.hydra.sweep.dir)
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> None:
        """Ask trials, `n_jobs` at a time, until the study holds `n_trials` finished or running
        ones (other processes may share it) or this sweep has run as many as were missing; run
        each in `<sweep dir>/<trial number>` (a trial run again after its process died: in its
        first run's directory) and tell the results; raise if any of this sweep's failed."""
        from hydra_plugins.optuna_sweeper import _optuna

        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, self.sweep_dir / "multirun.yaml")  # what -m resume= reruns
        params = [f"{key}={value}" for key, value in self.params.items()]
        distributions, fixed = _optuna.search_space([*params, *arguments])
        url = self.storage or f"sqlite:///{self.sweep_dir.resolve()}/optuna.db"
        storage = _optuna.storage_with_heartbeat(url, self.heartbeat_interval)
        name = self.study_name or self.sweep_dir.name
        sweep_dir = self.sweep_dir.resolve()
        study = _optuna.open_study(
            name, storage, self.direction, self.sampler, self.seed, sweep_dir
        )
        todo = max(self.n_trials - _optuna.finished(study), 0)  # failed ones run again
        log.info(f"Study {name!r} ({url}): {todo} trials to run")
        failures: list[str] = []
        ran = 0
        while trials := _optuna.ask(
            study, distributions, self.n_trials, min(self.n_jobs, todo - ran), sweep_dir
        ):
            overrides = [
                [*fixed, *_optuna.trial_overrides(storage, t, url, self.prune)] for t in trials
            ]
            with _optuna.heartbeat(storage, trials):
                jobs = self.launcher.launch(overrides, initial_job_idx=trials[0].number)
            told = (_optuna.tell(study, t, job) for t, job in zip(trials, jobs, strict=True))
            failures += filter(None, told)
            ran += len(trials)
        _optuna.write_best(study, self.sweep_dir / "optimization_results.yaml")
        for name, figure in _optuna.study_figures(study).items():
            figure.savefig(self.sweep_dir / f"{name}.png", dpi=100, bbox_inches="tight")
        if failures:
            raise TrialsFailedError(
                f"{len(failures)} of {ran} trials failed:\n" + "\n".join(failures)
            )
