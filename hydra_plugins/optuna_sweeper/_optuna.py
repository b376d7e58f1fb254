"""Everything that imports Optuna, kept out of Hydra's plugin scan (it skips `_` modules)."""

import logging
import math
import warnings
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import optuna
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep, Transformer
from hydra.core.utils import JobReturn, JobStatus
from hydra.utils import instantiate
from omegaconf import OmegaConf
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import Trial, TrialState

log = logging.getLogger(__name__)
SAMPLERS = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}
# the trials that count towards n_trials; failed ones are run again by the next sweep
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def to_distribution(override: Override) -> BaseDistribution:
    """A sweep as a distribution: choice, range, or interval (tags: log, int)."""
    sweep = override.value()
    if isinstance(sweep, IntervalSweep):
        if "int" in sweep.tags:
            return IntDistribution(int(sweep.start), int(sweep.end), log="log" in sweep.tags)
        return FloatDistribution(sweep.start, sweep.end, log="log" in sweep.tags)
    values = list(override.sweep_iterator(transformer=Transformer.encode))
    if isinstance(sweep, RangeSweep) and not sweep.shuffle:
        kind = IntDistribution if all(isinstance(v, int) for v in values) else FloatDistribution
        return kind(min(values), max(values), step=abs(sweep.step))
    return CategoricalDistribution(values)


def search_space(arguments: Iterable[str]) -> tuple[dict[str, BaseDistribution], list[str]]:
    """Split overrides into distributions (the sweeps) and fixed overrides; a later key wins."""
    parsed = OverridesParser.create().parse_overrides(list(arguments))
    by_key = {override.get_key_element(): override for override in parsed}
    sweeps = {key: to_distribution(o) for key, o in by_key.items() if o.is_sweep_override()}
    return sweeps, [o.input_line for o in by_key.values() if not o.is_sweep_override()]


def open_study(
    name: str | None, storage: str | None, direction: str, sampler: str, seed: int | None
) -> optuna.Study:
    """Create or load the study; re-queue the trials a crashed sweep left running."""
    if storage and storage.startswith("sqlite:///"):
        Path(storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        study_name=name, storage=storage, direction=direction, load_if_exists=True
    )
    if study.direction.name.lower() != direction:
        stored = study.direction.name.lower()
        raise ValueError(f"study {study.study_name!r} in {storage} is to {stored}, not {direction}")
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        log.warning(f"Trial {trial.number} was left running: marked failed, queued again")
        study.tell(trial.number, state=TrialState.FAIL)
        study.enqueue_trial(trial.params)
    # Offset the seed by the trials so far, so a resumed sweep does not repeat their params.
    study.sampler = SAMPLERS[sampler](seed=None if seed is None else seed + len(study.trials))
    return study


def finished(study: optuna.Study) -> int:
    """How many trials count towards n_trials."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def tell(study: optuna.Study, trial: Trial, job: JobReturn) -> str | None:
    """Tell Optuna how the trial's job ended; return why it failed, if it did."""
    result = job._return_value  # the property would print "Error executing job", even if pruned
    if isinstance(result, optuna.TrialPruned):
        study.tell(trial, state=TrialState.PRUNED)
        log.info(f"Trial {trial.number} pruned")
        return None
    if job.status is not JobStatus.COMPLETED:
        reason = f"{type(result).__name__}: {result}"
    elif isinstance(result, int | float) and not math.isnan(result):
        study.tell(trial, float(result))
        log.info(f"Trial {trial.number} finished: {result}")
        return None
    else:
        reason = f"returned {result!r}, not a number"
    study.tell(trial, state=TrialState.FAIL)
    log.error(f"Trial {trial.number} failed: {reason}")
    return f"trial {trial.number}: {reason}"


def write_best(study: optuna.Study, path: Path) -> None:
    """Log the best trial and save it to `path` as YAML (nothing while no trial completed)."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        log.warning(f"No trial of study {study.study_name!r} has completed yet")
        return
    best = study.best_trial
    overrides = " ".join(f"{name}={value}" for name, value in best.params.items())
    log.info(f"Best trial {best.number}: value {best.value} with {overrides}")
    path.parent.mkdir(parents=True, exist_ok=True)
    results = {
        "study_name": study.study_name,
        "direction": study.direction.name.lower(),
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": best.params,
        "trials": dict(Counter(trial.state.name.lower() for trial in study.trials)),
    }
    OmegaConf.save(OmegaConf.create(results), path)


def study_figures(study: optuna.Study) -> dict[str, Any]:
    """Optuna's own matplotlib plots of the study, by file name: the optimisation history, the
    parameters' importances and their parallel coordinates (the last two need two completed
    trials)."""
    import matplotlib

    matplotlib.use("Agg")  # files only
    from optuna.visualization import matplotlib as plots

    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    drawn = {"optuna_history": plots.plot_optimization_history}
    if len(completed) >= 2 and completed[0].params:
        drawn |= {
            "optuna_importances": plots.plot_param_importances,
            "optuna_parallel_coordinates": plots.plot_parallel_coordinate,
        }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return {name: plot(study).figure for name, plot in drawn.items()}


def trial_overrides(trial: Trial, storage: str | None, prune: bool) -> list[str]:
    """The trial's params as overrides, and the pruning callback when pruning."""
    params = [f"{name}={value}" for name, value in trial.params.items()]
    if not prune:
        return params
    callback = (
        f"{{_target_:{__name__}.pruning_callback,study_name:'{trial.study.study_name}',"
        f"storage:'{storage}',trial_id:{trial._trial_id},monitor:'${{monitor}}'}}"
    )
    return [*params, f"+callbacks.optuna_pruning={callback}"]


def pruning_callback(study_name: str, storage: str, trial_id: int, monitor: str) -> Any:
    """Optuna's `PyTorchLightningPruningCallback` for a trial running in this job."""
    from optuna_integration import PyTorchLightningPruningCallback

    pruner = instantiate(HydraConfig.get().sweeper.pruner)
    study = optuna.load_study(study_name=study_name, storage=storage, pruner=pruner)
    return PyTorchLightningPruningCallback(Trial(study, trial_id), monitor)
