"""The Optuna sweeper plugin: search space, trial outcomes, and real sweeps through the CLI."""

import csv
import math
import signal
import time
from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
from PIL import Image

from hydra_plugins.optuna_sweeper._optuna import (
    search_space,
    storage_with_heartbeat,
    study_figures,
    tell,
)
from src.engine.config import CONFIG_DIR, group_options
from tests.conftest import run_script, start_script

FAST = [
    "hparams_search=points_optuna",
    "data.num_samples=400",
    "trainer.max_epochs=1",
    "callbacks=none",
    "logger=none",
    "extras.print_config=false",
    "test=false",
]


def sweep(sweep_dir: Path, *args: str) -> tuple[int, str]:
    """Run `train.py -m` with the points search into `sweep_dir`; the exit code and stderr."""
    result = run_script("train", "-m", *FAST, f"hydra.sweep.dir={sweep_dir}", *args)
    return result.returncode, result.stderr


def storage(tmp_path: Path) -> str:
    """An SQLite storage URL in `tmp_path`."""
    return f"sqlite:///{tmp_path}/optuna.db"


def load(tmp_path: Path) -> optuna.Study:
    """The points search's study, as stored in `tmp_path`."""
    return optuna.load_study(study_name="points_optuna", storage=storage(tmp_path))


def job_overrides(sweep_dir: Path) -> list[list[str]]:
    """Each job's command-line overrides, by job number."""
    jobs = sorted(
        (path for path in sweep_dir.iterdir() if path.name.isdigit()), key=lambda p: int(p.name)
    )
    return [OmegaConf.to_container(OmegaConf.load(job / ".hydra/overrides.yaml")) for job in jobs]


@pytest.mark.parametrize("name", group_options("hparams_search"))
def test_search_configs_name_real_keys(name: str) -> None:
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", [f"hparams_search={name}"], return_hydra_config=True)
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper")
    for key, value in cfg.hydra.sweeper.params.items():
        if "/" in key:  # a config group: every choice is an option of it
            options = value.removeprefix("choice(").removesuffix(")").split(", ")
            assert all((CONFIG_DIR / key / f"{option}.yaml").is_file() for option in options)
        else:
            assert OmegaConf.select(cfg, key) is not None, key


def test_search_space_maps_hydra_sweeps_to_distributions() -> None:
    sweeps, fixed = search_space(
        [
            "lr=tag(log, interval(1e-4, 1e-1))",
            "width=tag(int, interval(8, 64))",
            "depth=range(1, 10, 2)",
            "batch_size=choice(32, 64)",
            "model/optimizer=adam,sgd",
            "seed=1",
            "batch_size=16",  # a later override of the same key wins
        ]
    )
    assert sweeps == {
        "lr": FloatDistribution(1e-4, 1e-1, log=True),
        "width": IntDistribution(8, 64),
        "depth": IntDistribution(1, 9, step=2),
        "model/optimizer": CategoricalDistribution(["adam", "sgd"]),
    }
    assert fixed == ["batch_size=16", "seed=1"]


def test_a_job_that_fails_returns_nan_or_none_is_a_failed_trial() -> None:
    study = optuna.create_study()
    outcomes = [
        (JobStatus.COMPLETED, 0.5),
        (JobStatus.COMPLETED, math.nan),
        (JobStatus.COMPLETED, None),
        (JobStatus.FAILED, ValueError("bad lr")),
        (JobStatus.FAILED, optuna.TrialPruned()),
    ]
    reasons = [tell(study, study.ask(), JobReturn(status=s, _return_value=v)) for s, v in outcomes]
    assert reasons == [
        None,
        "trial 1: returned nan, not a number",
        "trial 2: returned None, not a number",
        "trial 3: ValueError: bad lr",
        None,
    ]
    states = [TrialState.COMPLETE, *[TrialState.FAIL] * 3, TrialState.PRUNED]
    assert [trial.state for trial in study.trials] == states


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-trial TPE search (seed 42) of the points config."""
    sweep_dir = tmp_path_factory.mktemp("search")
    code, stderr = sweep(sweep_dir, "hydra.sweeper.n_trials=4")
    assert code == 0, stderr[-3000:]
    return sweep_dir


def test_search_writes_the_best_trial(searched: Path) -> None:
    results = OmegaConf.load(searched / "optimization_results.yaml")
    assert results.trials == {"complete": 4}
    params = ["model.optimizer.lr", "data.batch_size", "model.net.hidden_sizes", "model/optimizer"]
    assert list(results.best_params) == params
    best = job_overrides(searched)[results.best_trial]
    assert [f"{key}={value}" for key, value in results.best_params.items()] == best[-4:]
    assert 0 < results.best_value < 0.7


def test_sampler_seed_repeats_the_params(searched: Path, tmp_path: Path) -> None:
    code, stderr = sweep(tmp_path, "hydra.sweeper.n_trials=2")
    assert code == 0, stderr[-3000:]
    assert job_overrides(tmp_path) == job_overrides(searched)[:2]


@pytest.mark.slow
def test_a_stored_study_resumes_and_reruns_a_trial_whose_process_died(tmp_path: Path) -> None:
    args = (f"hydra.sweeper.storage='{storage(tmp_path)}'", "hydra.sweeper.sampler=random")
    code, stderr = sweep(tmp_path / "first", *args, "hydra.sweeper.n_trials=2")
    assert code == 0, stderr[-3000:]
    study = optuna.load_study(
        study_name="points_optuna", storage=storage_with_heartbeat(storage(tmp_path), 1)
    )
    crashed = study.ask({"model.optimizer.lr": FloatDistribution(1e-4, 1e-1, log=True)})
    study._storage.record_heartbeat(crashed._trial_id)  # its last heartbeat
    time.sleep(2.5)  # more than twice the heartbeat interval
    beats = "hydra.sweeper.heartbeat_interval=1"
    code, stderr = sweep(tmp_path / "second", *args, beats, "hydra.sweeper.n_trials=4")
    assert code == 0, stderr[-3000:]
    trials = load(tmp_path).trials
    complete, fail = TrialState.COMPLETE, TrialState.FAIL
    assert [t.state for t in trials] == [complete, complete, fail, complete, complete]
    assert trials[3].params["model.optimizer.lr"] == crashed.params["model.optimizer.lr"]
    # run again in the directory its first run had (to resume from its checkpoints)
    assert sorted(path.name for path in (tmp_path / "second").glob("[0-9]*")) == ["2", "4"]


@pytest.mark.slow
def test_processes_sharing_a_study_run_each_trial_once_and_tell_it(tmp_path: Path) -> None:
    shared = [f"hydra.sweeper.storage='{storage(tmp_path)}'", "hydra.sweeper.n_trials=6"]
    shared += ["hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.sampler=random"]
    processes = [
        start_script("train", "-m", *FAST, f"hydra.sweep.dir={tmp_path / name}", *shared)
        for name in ("a", "b")
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr[-3000:]
        assert "Cannot tell" not in stderr and "Warning" not in stderr
    trials = load(tmp_path).trials
    assert {t.state for t in trials} == {TrialState.COMPLETE}
    assert 6 <= len(trials) <= 7  # two processes that ask at the same moment: one more
    ran = [job.name for name in ("a", "b") for job in (tmp_path / name).glob("[0-9]*")]
    assert sorted(map(int, ran)) == [t.number for t in trials]  # each trial in one sweep


@pytest.mark.slow
def test_a_killed_search_continues_with_one_command(tmp_path: Path) -> None:
    search = ["hparams_search=points_optuna", "hydra.sweeper.n_trials=3", "trainer.max_epochs=8"]
    search += ["callbacks.early_stopping=null", "extras.print_config=false"]
    process = start_script("train", "-m", *search, f"hydra.sweep.dir={tmp_path}")
    deadline = time.monotonic() + 180
    while not (tmp_path / "1" / "checkpoints" / "last.ckpt").exists():
        assert process.poll() is None and time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    continued = run_script("train", "-m", f"resume={tmp_path}")
    assert continued.returncode == 0, continued.stderr[-3000:]
    assert "Trial 1 was left running by this sweep: queued again" in continued.stdout
    study = optuna.load_study(study_name="points_optuna", storage=storage(tmp_path))
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) == 3 and states.count(TrialState.FAIL) == 1
    with open(tmp_path / "summary.csv") as file:
        rows = list(csv.DictReader(file))
    # trial 2 ran trial 1 again, in its directory: from its checkpoints
    assert sorted((row["job"], row["status"]) for row in rows) == [(n, "ok") for n in "013"]
    assert "Restoring states from the checkpoint" in (tmp_path / "1" / "train.log").read_text()


def test_failed_trials_are_recorded_and_the_sweep_exits_non_zero(tmp_path: Path) -> None:
    args = [f"hydra.sweeper.storage='{storage(tmp_path)}'", "hydra.sweeper.n_trials=4"]
    code, stderr = sweep(tmp_path, *args, "hydra.sweeper.sampler=random", "data.batch_size=0,32")
    trials = load(tmp_path).trials
    failed = [t.number for t in trials if t.state == TrialState.FAIL]
    assert failed == [t.number for t in trials if t.params["data.batch_size"] == 0]
    assert 0 < len(failed) < 4
    assert code != 0
    assert f"{len(failed)} of 4 trials failed" in stderr
    assert "data.batch_size=0 is invalid" in stderr
    assert "Traceback" not in stderr  # the failures are named; no traceback of the sweeper
    assert (tmp_path / "optimization_results.yaml").is_file()


@pytest.mark.slow
def test_pruning_reports_every_epoch_and_prunes_bad_trials(tmp_path: Path) -> None:
    pytest.importorskip("optuna_integration")
    pruner = "hydra.sweeper.pruner={_target_:optuna.pruners.MedianPruner,n_startup_trials:1}"
    args = [f"hydra.sweeper.storage='{storage(tmp_path)}'", "hydra.sweeper.n_trials=4", pruner]
    code, stderr = sweep(tmp_path, *args, "trainer.max_epochs=3")
    assert code == 0, stderr[-3000:]
    trials = load(tmp_path).trials
    assert {t.state for t in trials} == {TrialState.COMPLETE, TrialState.PRUNED}
    assert all(t.intermediate_values for t in trials)


def test_a_search_draws_optunas_plots_and_one_per_searched_setting(searched: Path) -> None:
    settings = [
        "data.batch_size",
        "model.net.hidden_sizes",
        "model.optimizer",
        "model.optimizer.lr",
    ]
    assert {path.name for path in searched.glob("summary_*.png")} == {
        f"summary_{name}.png"
        for name in settings  # model/optimizer: a file name, no folder
    }
    for name in ("optuna_history", "optuna_importances", "optuna_parallel_coordinates"):
        with Image.open(searched / f"{name}.png") as image:
            assert image.format == "PNG" and min(image.size) > 100


def test_the_history_plot_shows_every_trial() -> None:
    study = optuna.create_study()
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1) ** 2, n_trials=5)
    history = study_figures(study)["optuna_history"].axes[0]
    assert max(len(points.get_offsets()) for points in history.collections) == 5
