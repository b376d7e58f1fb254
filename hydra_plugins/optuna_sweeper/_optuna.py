"""Everything that imports Optuna, kept out of Hydra's plugin scan (it skips `_` modules)."""

import logging
import math
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
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
# the trials that count towards n_trials (failed ones are run again), with those running
HELD = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
SWEEP_DIR = "sweep_dir"  # the user attribute of a trial that names the sweep running it


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


def storage_with_heartbeat(url: str, interval: int) -> optuna.storages.RDBStorage:
    """The database at `url`, where each running trial beats every `interval` seconds; one that
    misses its beats for twice as long (its process died) is failed and queued again, at most
    twice, with the same params."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    heartbeat_interval=interval,
                    grace_period=2 * interval,
                    heartbeat_stale_trial_callback=(
                        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2)
                    ),
                )
        except sqlalchemy.exc.IntegrityError:  # another sweep created the new database's tables
            time.sleep(0.5 * (attempt + 1))
    raise RuntimeError(f"could not open the Optuna database {url}")


def open_study(
    name: str,
    storage: optuna.storages.RDBStorage,
    direction: str,
    sampler: str,
    seed: int | None,
    sweep_dir: Path,
) -> optuna.Study:
    """Create or load the study; queue again the trials this sweep's directory left running
    (the process that ran them has ended: this one holds the directory now)."""
    study = optuna.create_study(
        study_name=name, storage=storage, direction=direction, load_if_exists=True
    )
    if study.direction.name.lower() != direction:
        stored = study.direction.name.lower()
        raise ValueError(
            f"study {study.study_name!r} in {storage.url} is to {stored}, not {direction}"
        )
    retry = storage.get_heartbeat_stale_trial_callback()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.user_attrs.get(SWEEP_DIR) == str(sweep_dir):
            log.warning(f"Trial {trial.number} was left running by this sweep: queued again")
            storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            retry(study, storage.get_trial(trial._trial_id))
    # Offset the seed by the trials so far, so a resumed sweep does not repeat their params.
    study.sampler = SAMPLERS[sampler](seed=None if seed is None else seed + len(study.trials))
    return study


def ask(
    study: optuna.Study,
    distributions: dict[str, BaseDistribution],
    n_trials: int,
    most: int,
    sweep_dir: Path,
) -> list[Trial]:
    """Up to `most` trials, queued ones first, while the study holds fewer than `n_trials`
    finished or running trials; a trial whose process died is failed (and queued again) first.
    Processes that share the study and ask at the same moment may each add one trial more."""
    trials = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # the heartbeats are this sweeper's own (`heartbeat`), not Study.optimize's
        warnings.filterwarnings("ignore", "Heartbeat of storage is supposed", UserWarning)
        optuna.storages.fail_stale_trials(study)
        for _ in range(most):
            if len(study.get_trials(deepcopy=False, states=HELD)) >= n_trials:
                break
            trials.append(study.ask(distributions))
    for trial in trials:
        study._storage.record_heartbeat(trial._trial_id)  # alive from the start
        trial.set_user_attr(SWEEP_DIR, str(sweep_dir))
    return trials


def finished(study: optuna.Study) -> int:
    """How many trials count towards n_trials."""
    return len(study.get_trials(deepcopy=False, states=HELD[:2]))


@contextmanager
def heartbeat(storage: optuna.storages.RDBStorage, trials: list[Trial]) -> Iterator[None]:
    """Record the trials' heartbeats while they run, in a thread of this process."""
    stop, interval = threading.Event(), storage.get_heartbeat_interval()

    def beat() -> None:
        while True:
            for trial in trials:
                storage.record_heartbeat(trial._trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name="optuna-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


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
        try:
            study.tell(trial, float(result))
        except ValueError:  # another process failed it: its heartbeats came too late
            log.warning(
                f"Trial {trial.number} finished ({result}) after another process had failed it "
                f"for missed heartbeats and queued it again; raise hydra.sweeper.heartbeat_interval"
            )
            return None
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


def trial_overrides(
    storage: optuna.storages.RDBStorage, trial: Trial, url: str, prune: bool
) -> list[str]:
    """The trial's params as overrides, its job directory (a trial run again after its process
    died: its first run's, to resume from its checkpoints), and the pruning callback when
    pruning."""
    params = [f"{name}={value}" for name, value in trial.params.items()]
    job = storage.get_trial_system_attrs(trial._trial_id).get("failed_trial", trial.number)
    params.append(f"hydra.sweep.subdir={job}")
    if not prune:
        return params
    callback = (
        f"{{_target_:{__name__}.pruning_callback,study_name:'{trial.study.study_name}',"
        f"storage:'{url}',trial_id:{trial._trial_id},monitor:'${{monitor}}'}}"
    )
    return [*params, f"+callbacks.optuna_pruning={callback}"]


def pruning_callback(study_name: str, storage: str, trial_id: int, monitor: str) -> Any:
    """Optuna's `PyTorchLightningPruningCallback` for a trial running in this job."""
    from optuna_integration import PyTorchLightningPruningCallback

    pruner = instantiate(HydraConfig.get().sweeper.pruner)
    study = optuna.load_study(study_name=study_name, storage=storage, pruner=pruner)
    return PyTorchLightningPruningCallback(Trial(study, trial_id), monitor)
