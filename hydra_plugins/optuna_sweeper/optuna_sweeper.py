"""The sweeper: asks Optuna for trials, runs them with Hydra's launcher, tells the results."""

import logging
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.errors import CompactHydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

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
        pruner: Any,
        params: dict[str, str],
    ) -> None:
        if n_jobs < 1 or n_trials < 0:
            raise ValueError(f"need n_jobs >= 1 and n_trials >= 0, got {n_jobs} and {n_trials}")
        if pruner is not None and storage is None:
            raise ValueError("pruning needs a storage: each job reports to the study through it")
        if pruner is not None and find_spec("optuna_integration") is None:
            raise ImportError("pruning needs optuna-integration: pip install optuna-integration")
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {sorted(DIRECTIONS)}, got {direction!r}")
        self.direction, self.sampler = DIRECTIONS[direction], Sampler(sampler).value
        self.n_trials, self.n_jobs, self.seed = n_trials, n_jobs, seed
        self.study_name, self.storage = study_name, storage
        # the pruner itself is built in each job, from this sweeper's config
        self.prune, self.params = pruner is not None, params

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.sweep_dir = Path(config.hydra.sweep.dir)
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> None:
        """Top the study up to `n_trials` finished trials; raise if any of this sweep's failed."""
        from hydra_plugins.optuna_sweeper import _optuna

        params = [f"{key}={value}" for key, value in self.params.items()]
        distributions, fixed = _optuna.search_space([*params, *arguments])
        study = _optuna.open_study(
            self.study_name, self.storage, self.direction, self.sampler, self.seed
        )
        todo = max(self.n_trials - _optuna.finished(study), 0)
        log.info(
            f"Study {study.study_name!r} ({self.storage or 'in memory'}): {todo} trials to run"
        )
        failures: list[str] = []
        for done in range(0, todo, self.n_jobs):
            trials = [study.ask(distributions) for _ in range(min(self.n_jobs, todo - done))]
            overrides = [
                [*fixed, *_optuna.trial_overrides(t, self.storage, self.prune)] for t in trials
            ]
            jobs = self.launcher.launch(overrides, initial_job_idx=trials[0].number)
            told = (_optuna.tell(study, t, job) for t, job in zip(trials, jobs, strict=True))
            failures += filter(None, told)
        _optuna.write_best(study, self.sweep_dir / "optimization_results.yaml")
        for name, figure in _optuna.study_figures(study).items():
            figure.savefig(self.sweep_dir / f"{name}.png", dpi=100, bbox_inches="tight")
        if failures:
            raise TrialsFailedError(
                f"{len(failures)} of {todo} trials failed:\n" + "\n".join(failures)
            )
