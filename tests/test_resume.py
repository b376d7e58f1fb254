"""Trustworthy runs: exact resume after SIGKILL, SIGTERM or Ctrl-C with the whole history kept,
the newest checkpoint that loads, one process per run, safe checkpoints, non-finite losses."""

import csv
import hashlib
import logging
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from src.engine.arguments import expand_run_arguments
from src.engine.checkpoint_files import load_checkpoint
from src.engine.checkpoints import resolve_checkpoint
from src.engine.config import compose_run
from src.engine.loading import load_module
from src.errors import ConfigError
from src.eval import evaluate
from src.train import train
from tests.conftest import (
    TRUSTED,
    interrupted_run,
    killed_and_resumed,
    run_script,
    shared_run,
    start_script,
)

# 2 epochs of 50 steps, dropout on (so the RNG matters), a checkpoint every 10 steps
RUN = [
    "trainer.max_epochs=2",
    "trainer.deterministic=true",
    "model.net.dropout=0.2",
    "callbacks.last_checkpoint.every_n_train_steps=10",
    "logger=[csv,tensorboard]",
    "callbacks.early_stopping=null",
    "callbacks.rich_progress_bar=null",
    "extras.print_config=false",
]
STEPS_PER_EPOCH = 50


def last_checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """The weights of a run of `RUN` that went all the way."""
    checkpoint = last_checkpoint(run_dir)
    assert checkpoint["global_step"] == 2 * STEPS_PER_EPOCH
    return checkpoint["state_dict"]


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[name] - b[name]).abs().max().item() for name in a)


@pytest.fixture(scope="session")
def uninterrupted_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    return shared_run(tmp_path_factory, worker_id, "uninterrupted_run", *RUN)


@pytest.fixture(scope="module")
def uninterrupted(uninterrupted_run: Path) -> dict[str, torch.Tensor]:
    return final_weights(uninterrupted_run)


# Lightning's ThroughputMonitor counts batches, samples and time from each process's start
PER_PROCESS = ("train/batches", "train/samples", "train/time", "train/device/")


def csv_history(run_dir: Path) -> list[tuple]:
    """The rows of the run's metrics.csv, in order, without the per-process counters."""
    with open(run_dir / "csv" / "metrics.csv") as file:
        rows = [
            {k: v for k, v in row.items() if v and not k.startswith(PER_PROCESS)}
            for row in csv.DictReader(file)
        ]
    return [tuple(sorted(row.items())) for row in rows if len(row) > 2]  # more than step, epoch


def tensorboard_history(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Each scalar TensorBoard shows for the run: its (step, value) points, as TensorBoard reads
    them (events an interrupted run logged after its checkpoint are purged)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard")).Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
        if not tag.startswith((*PER_PROCESS, "hparams/"))  # hparams/: the final metrics
    }


def interrupt(run_dir: Path, signum: int, *overrides: str) -> subprocess.CompletedProcess:
    """Start the run, send `signum` once its first step checkpoint exists (mid-epoch 0)."""
    return interrupted_run(run_dir, signum, *RUN, *overrides)


# (step, hook) of `tests.crashes.KillAt`, and how batches are served
WORKERS = ["data.loader=torch", "data.num_workers=2"]  # torchdata's StatefulDataLoader
KILL_POINTS = {
    "mid-epoch": (70, "on_train_batch_start", []),
    # the same batches as the in-memory loader's, so the same weights as the run of RUN
    "mid-epoch, a standard loader with 2 workers": (70, "on_train_batch_start", WORKERS),
    "before an epoch's validation": pytest.param(
        50, "on_validation_start", [], marks=pytest.mark.slow
    ),
    "between epochs": pytest.param(50, "on_train_epoch_start", [], marks=pytest.mark.slow),
}


@pytest.mark.parametrize(("step", "hook", "loader"), KILL_POINTS.values(), ids=KILL_POINTS.keys())
def test_a_killed_run_resumes_to_the_same_weights_and_history(
    uninterrupted_run, tmp_path, step, hook, loader
) -> None:
    run_dir = tmp_path / "run"
    killed_and_resumed(run_dir, step, *RUN, *loader, hook=hook)
    assert max_difference(final_weights(run_dir), final_weights(uninterrupted_run)) == 0
    assert csv_history(run_dir) == csv_history(uninterrupted_run)
    assert tensorboard_history(run_dir) == tensorboard_history(uninterrupted_run)
    provenance = yaml.safe_load((run_dir / "provenance.yaml").read_text())
    assert "tests.crashes.KillAt" in provenance["command"]  # the original run's, kept
    assert [r["command"].count("ckpt_path=last") for r in provenance["resumes"]] == [1]


def test_sigterm_checkpoints_exits_nonzero_and_resume_continues_exactly(
    uninterrupted, tmp_path
) -> None:
    run_dir = tmp_path / "run"
    stopped = interrupt(run_dir, signal.SIGTERM, "logger=wandb")
    assert stopped.returncode == 1
    assert (
        f"Stopped by SIGTERM after checkpointing; resume with: python src/train.py resume={run_dir}"
        in stopped.stderr
    )
    assert (run_dir / "checkpoints" / "on_exception.ckpt").is_file()
    resumed = run_script("train", f"resume={run_dir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert max_difference(final_weights(run_dir), uninterrupted) <= 1e-6
    wandb_ids = {path.name.rsplit("-", 1)[1] for path in run_dir.glob("wandb/offline-run-*")}
    assert len(list(run_dir.glob("wandb/offline-run-*"))) == 2 and len(wandb_ids) == 1


def test_ctrl_c_stops_after_the_step_and_resume_continues_exactly(uninterrupted, tmp_path) -> None:
    run_dir = tmp_path / "run"
    stopped = interrupt(run_dir, signal.SIGINT)
    assert stopped.returncode == 1
    assert (
        f"Stopped by Ctrl-C after checkpointing; resume with: python src/train.py resume={run_dir}"
        in stopped.stderr
    )
    assert (run_dir / "checkpoints" / "on_exception.ckpt").is_file()
    resumed = run_script("train", f"resume={run_dir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert max_difference(final_weights(run_dir), uninterrupted) == 0


def test_a_run_without_ckpt_path_starts_afresh_beside_old_checkpoints(make_cfg, tmp_path) -> None:
    # Lightning's own on-exception callback would make this fit resume from the first run's
    # last.ckpt (epoch 2 of 1: no training at all)
    quiet = ["test=false", "extras.print_config=false", "callbacks.rich_progress_bar=null"]
    train(make_cfg("trainer.max_epochs=2", *quiet))
    assert last_checkpoint(tmp_path)["global_step"] == 2 * STEPS_PER_EPOCH
    train(make_cfg("trainer.max_epochs=1", *quiet))
    assert last_checkpoint(tmp_path)["global_step"] == STEPS_PER_EPOCH


def test_resume_needs_a_run_directory(tmp_path) -> None:
    result = run_script("train", f"resume={tmp_path}")
    assert result.returncode == 1
    assert f"resume={tmp_path}: {tmp_path}/.hydra/config.yaml is missing" in result.stderr
    checkpoint = tmp_path / "last.ckpt"
    checkpoint.write_bytes(b"")
    result = run_script("train", f"resume={checkpoint}")
    assert result.returncode == 1
    assert f"resume={checkpoint}: {checkpoint} is a file; give its run's directory" in result.stderr


def test_nan_loss_batches_can_be_skipped_and_a_nan_result_fails(make_cfg) -> None:
    cfg = make_cfg("model.optimizer.lr=1e30", "model.nonfinite_loss=skip", "trainer.max_epochs=1")
    with (
        pytest.warns(UserWarning, match="train/loss is nan at training step .*: batch skipped"),
        pytest.raises(
            FloatingPointError, match=r"val/loss has no finite value .*: the run has no result"
        ),
    ):
        train(cfg)


class Payload:
    """A pickle that creates a file when loaded: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_checkpoint_carrying_code_is_refused_everywhere(make_cfg, default_run, tmp_path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save(last_checkpoint(default_run) | {"payload": Payload(marker)}, evil)
    refused = f"checkpoint {evil} cannot be used: it holds objects other than weights"
    with pytest.raises(ConfigError, match=refused):
        train(make_cfg(f"ckpt_path={evil}"))
    with pytest.raises(ConfigError, match=refused):
        evaluate(make_cfg(f"ckpt_path={evil}", config_name="eval"))
    with pytest.raises(ConfigError, match=refused):
        load_module(evil, TRUSTED)
    assert not marker.exists()


def test_a_truncated_or_exported_file_is_refused_as_a_checkpoint(
    default_run, make_cfg, tmp_path
) -> None:
    checkpoints = default_run / "checkpoints"
    before = {path.name: sha256(path) for path in checkpoints.iterdir()}
    truncated = tmp_path / "truncated.ckpt"
    data = (checkpoints / "last.ckpt").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    message = re.escape(f"checkpoint {truncated} cannot be used: it is truncated")
    with pytest.raises(ConfigError, match=message):
        train(make_cfg(f"ckpt_path={truncated}"))
    exported = tmp_path / "model.pt"  # export.py's TorchScript, taken for a checkpoint
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), exported)
    with pytest.raises(ConfigError, match="it is a TorchScript model \\(an export\\)"):
        train(make_cfg(f"ckpt_path={exported}"))
    assert not (tmp_path / "checkpoints").exists()
    assert {path.name: sha256(path) for path in checkpoints.iterdir()} == before


def test_a_corrupt_dataset_stops_before_training(make_cfg, tmp_path, mnist_dir) -> None:
    images = mnist_dir / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])
    message = re.escape(f"MNIST is missing or corrupt under data.data_dir={mnist_dir}")
    with pytest.raises(ConfigError, match=message):
        train(make_cfg("data=mnist", "model=cnn", f"data.data_dir={mnist_dir}"))
    assert not list(tmp_path.glob("checkpoints/*.ckpt"))


def test_rerun_runs_the_saved_config_again_in_a_new_run_directory(default_run, tmp_path) -> None:
    run = copied_run(default_run, tmp_path)
    result = run_script("train", f"rerun={run}", f"paths.log_dir={tmp_path / 'logs'}")
    assert result.returncode == 0, result.stderr[-3000:]
    (rerun,) = (tmp_path / "logs" / "train" / "runs").iterdir()  # where every run writes
    assert "process" in (rerun / ".hydra" / "run.lock").read_text()  # held in a named run dir
    assert (
        max_difference(last_checkpoint(rerun)["state_dict"], last_checkpoint(run)["state_dict"])
        == 0
    )
    command = yaml.safe_load((rerun / "provenance.yaml").read_text())["command"]
    assert f"--config-path {run}/.hydra --config-name config" in command
    assert f"\nTrain: the config saved in {run}/.hydra\n" in result.stdout
    # it goes on as it began, from its saved config; an eval run is neither rerun nor resumed
    resumed = run_script("train", f"resume={rerun}", "trainer.max_epochs=11", "test=false")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert last_checkpoint(rerun)["global_step"] == last_checkpoint(run)["global_step"] + 50
    evaluated = tmp_path / "eval"
    result = run_script("eval", f"ckpt_path={run}", f"hydra.run.dir={evaluated}")
    assert result.returncode == 0, result.stderr[-3000:]
    for again in ("rerun", "resume"):
        refused = run_script("train", f"{again}={evaluated}")
        assert refused.returncode == 1
        assert f"{evaluated} is not a training run (task_name: eval)" in refused.stderr


def copied_run(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("run.lock"))
    return copy


def test_resume_takes_the_newest_checkpoint_that_loads(default_run, tmp_path, caplog) -> None:
    run_dir = copied_run(default_run, tmp_path)
    checkpoints = run_dir / "checkpoints"
    good = (checkpoints / "last.ckpt").read_bytes()
    (checkpoints / "on_exception.ckpt").write_bytes(good[: len(good) // 2])  # newer, truncated
    with caplog.at_level(logging.WARNING):
        assert resolve_checkpoint("last", run_dir) == str(checkpoints / "last.ckpt")
    assert f"Skipped {checkpoints / 'on_exception.ckpt'}: it is truncated" in caplog.text
    (checkpoints / "last.ckpt").write_bytes(b"")
    with pytest.raises(ConfigError, match=rf"ckpt_path=last: no checkpoint in {run_dir} loads \("):
        resolve_checkpoint("last", run_dir)


def test_non_finite_weights_are_never_checkpointed_nor_resumed(default_run, tmp_path) -> None:
    run_dir = tmp_path / "run"
    poison = "+callbacks.poison={_target_: tests.crashes.PoisonAt, step: 35}"
    result = run_script("train", *RUN, f"hydra.run.dir={run_dir}", poison)
    assert result.returncode == 1
    assert "train/loss is nan at training step 35" in result.stderr
    assert "train/loss is nan" in (run_dir / "error.txt").read_text()
    assert "on_exception.ckpt not saved: the weights hold NaN or infinite values" in result.stderr
    assert [p.name for p in (run_dir / "checkpoints").glob("*.ckpt")] == ["last.ckpt"]
    assert last_checkpoint(run_dir)["global_step"] == 30  # the last finite weights
    inf = last_checkpoint(default_run)
    next(iter(inf["state_dict"].values())).fill_(float("inf"))
    torch.save(inf, tmp_path / "inf.ckpt")
    with pytest.raises(ConfigError, match="its weights hold NaN or infinite values"):
        resolve_checkpoint(str(tmp_path / "inf.ckpt"), tmp_path)


@pytest.mark.parametrize("stop", ["trainer.max_steps=75", "callbacks.early_stopping.patience=0"])
def test_last_checkpoint_holds_the_end_of_fitting_whatever_ended_it(
    make_cfg, tmp_path, stop
) -> None:
    train(make_cfg(stop, "test=false", "extras.print_config=false", "trainer.max_epochs=20"))
    with open(tmp_path / "csv" / "metrics.csv") as file:
        last_epoch_end = max(int(row["step"]) for row in csv.DictReader(file) if row["train/loss"])
    assert last_checkpoint(tmp_path)["global_step"] == last_epoch_end + 1


CHANGED = {  # what resuming would restore over the new value, or fail on
    "model.optimizer.lr=0.5": "model.optimizer.lr=0.5 differs from 0.001",
    "model/optimizer=sgd": "model.optimizer._target_=torch.optim.SGD differs from torch.optim.Adam",
    "model/scheduler=cosine": "model.scheduler.T_max=11 differs from None",
    "model.net.hidden_sizes=[16]": "model.net.hidden_sizes=[16] differs from [10]",
    "data.batch_size=16": "data.batch_size=16 differs from 32",
    "seed=3": "seed=3 differs from 0",
}


@pytest.mark.parametrize("override", CHANGED)
def test_resuming_refuses_settings_the_checkpoint_would_overrule(
    make_cfg, default_run, override
) -> None:
    ckpt = default_run / "checkpoints" / "last.ckpt"
    with pytest.raises(ConfigError, match=re.escape(CHANGED[override])):
        train(
            make_cfg(
                f"ckpt_path={ckpt}", override, "trainer.max_epochs=11", "extras.print_config=false"
            )
        )


def test_resuming_may_change_how_it_trains_on(make_cfg, default_run, tmp_path) -> None:
    ckpt = default_run / "checkpoints" / "last.ckpt"
    steps = torch.load(ckpt, weights_only=True)["global_step"]
    allowed = ["trainer.max_epochs=11", "data.num_workers=0", "model.nonfinite_loss=skip"]
    train(make_cfg(f"ckpt_path={ckpt}", *allowed, "test=false", "extras.print_config=false"))
    assert last_checkpoint(tmp_path)["global_step"] == steps + STEPS_PER_EPOCH


def test_one_process_at_a_time_in_a_run_directory(tmp_path) -> None:
    run_dir = tmp_path / "run"
    first = start_script("train", *RUN, "trainer.max_epochs=1000", f"hydra.run.dir={run_dir}")
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "checkpoints" / "last.ckpt").exists():
            assert first.poll() is None and time.monotonic() < deadline, "no checkpoint was written"
            time.sleep(0.05)
        second = run_script("train", f"resume={run_dir}")
        assert second.returncode == 1
        assert f"{run_dir} is in use by process {first.pid} on " in second.stderr
        assert not (run_dir / "error.txt").exists()
    finally:
        first.kill()
        first.wait()
    # the lock of a killed process blocks nothing
    epochs = last_checkpoint(run_dir)["epoch"] + 2
    resumed = run_script("train", f"resume={run_dir}", f"trainer.max_epochs={epochs}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]


def records(run_dir: Path) -> dict[str, str]:
    """What a run directory says about its run: saved config, provenance, metrics, error."""
    names = [".hydra/*.yaml", "provenance.yaml", "metrics.json", "error.txt", "csv/*.csv"]
    return {str(p): p.read_text() for name in names for p in sorted(run_dir.glob(name))}


@pytest.mark.parametrize("script", ["train", "eval"])
def test_a_new_run_never_writes_over_an_earlier_one(default_run, tmp_path, script) -> None:
    run_dir = copied_run(default_run, tmp_path)
    before = records(run_dir), sha256(run_dir / "checkpoints" / "last.ckpt")
    evaluated = [f"ckpt_path={run_dir}"] if script == "eval" else []
    result = run_script(script, *evaluated, f"hydra.run.dir={run_dir}")
    assert result.returncode == 1
    how = f"continue that run with resume={run_dir}, or " if script == "train" else ""
    assert f"{run_dir} holds a run's checkpoints; {how}give a new hydra.run.dir" in result.stderr
    assert (records(run_dir), sha256(run_dir / "checkpoints" / "last.ckpt")) == before


def test_a_refused_resume_leaves_the_run_as_it_was(default_run, tmp_path) -> None:
    run_dir = copied_run(default_run, tmp_path)
    before = records(run_dir)
    refusals = {  # a changed setting; trainer.max_epochs below, and at, the epochs done
        ("model.optimizer.lr=0.5", "trainer.max_epochs=11"): "lr=0.5 differs from 0.001",
        ("trainer.max_epochs=3",): "nothing left to train",
        (): "nothing left to train",
    }
    for overrides, reason in refusals.items():
        result = run_script("train", f"resume={run_dir}", *overrides)
        assert result.returncode == 1
        assert reason in result.stderr and "Traceback" not in result.stderr
        assert records(run_dir) == before, overrides
    resumed = run_script("train", f"resume={run_dir}", "trainer.max_epochs=11", "test=false")
    assert resumed.returncode == 0, resumed.stderr[-3000:]


GO_ON = {
    "trainer.max_steps=75": [],
    "callbacks.early_stopping.patience=0": ["callbacks.early_stopping=null"],
}


@pytest.mark.parametrize("stop", GO_ON)
def test_a_finished_run_has_nothing_left_to_train_until_told(make_cfg, tmp_path, stop) -> None:
    quiet = ["test=false", "extras.print_config=false", "callbacks.rich_progress_bar=null"]
    quiet.append("model.optimizer.lr=0.01")  # converges, and early stopping stops it, in 20 epochs
    train(compose_run([stop, "trainer.max_epochs=20", *quiet], tmp_path / "first"))
    steps = last_checkpoint(tmp_path / "first")["global_step"]
    again = [f"ckpt_path={tmp_path / 'first'}", stop, "trainer.max_epochs=20", *quiet]
    with pytest.raises(ConfigError, match="nothing left to train"):
        train(compose_run(again, tmp_path / "second"))
    # another 50 steps: an epoch's worth, to be judged by a validation of its own
    train(
        compose_run([*again, *GO_ON[stop], f"trainer.max_steps={steps + 50}"], tmp_path / "third")
    )
    assert last_checkpoint(tmp_path / "third")["global_step"] == steps + 50


def test_a_warm_start_takes_the_checkpoints_model_and_data(make_cfg, tmp_path) -> None:
    quiet = ["test=false", "extras.print_config=false", "callbacks.rich_progress_bar=null"]
    first = tmp_path / "first"
    train(
        compose_run(["model=logreg", "data.batch_size=16", "trainer.max_epochs=1", *quiet], first)
    )
    then = [f"ckpt_path={first}", *quiet]
    train(compose_run([*then, "trainer.max_epochs=2"], tmp_path / "second"))
    warm = last_checkpoint(tmp_path / "second")
    assert warm["built_from"]["model"]["net"]["_target_"].endswith("LogisticRegression")
    assert warm["built_from"]["data"]["batch_size"] == 16
    assert warm["global_step"] == 2 * last_checkpoint(first)["global_step"]
    mismatch = "model.net._target_=src.models.nets.mlp.MLP differs from src.models.nets.logistic"
    with pytest.raises(ConfigError, match=re.escape(mismatch)):
        train(compose_run([*then, "model=mlp"], tmp_path / "third"))
    for ended in (first, tmp_path / "second"):  # at the end of trainer.max_epochs=1, and past it
        with pytest.raises(ConfigError, match="nothing left to train, the checkpoint has done"):
            run = [f"ckpt_path={ended}", *quiet, "trainer.max_epochs=1"]
            train(compose_run(run, tmp_path / f"after_{ended.name}"))


@pytest.mark.parametrize("script", ["train", "eval"])
def test_a_folder_that_is_no_run_is_never_written_into(default_run, tmp_path, script) -> None:
    """`hydra.run.dir=.` (or any folder of other files): refused before anything is written."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "requirements.txt").write_text("mine\n")
    (folder / "metrics.json").write_text('{"mine": 1}\n')
    evaluated = [f"ckpt_path={default_run}"] if script == "eval" else []
    result = run_script(script, *evaluated, f"hydra.run.dir={folder}")
    assert result.returncode == 1
    assert f"{folder} holds files that are not a run of this template" in result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["metrics.json", "requirements.txt"]
    assert (folder / "requirements.txt").read_text() == "mine\n"


def test_resume_takes_a_path_with_spaces_quoted_either_way(tmp_path) -> None:
    logs = tmp_path / "my runs, ü"
    quick = ["trainer.max_epochs=1", "logger=csv", "extras.print_config=false"]
    first = run_script("train", f"paths.log_dir='{logs}'", *quick)
    assert first.returncode == 0, first.stderr[-3000:]
    (run_dir,) = logs.glob("train/runs/*")
    # as the shell gives it whole ('resume=...'), and quoted as Hydra reads values ("resume='...'")
    for epochs, argument in ((2, f"resume={run_dir}"), (3, f"resume='{run_dir}'")):
        resumed = run_script("train", argument, f"trainer.max_epochs={epochs}")
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert last_checkpoint(run_dir)["epoch"] == epochs - 1
    assert list(logs.glob("train/runs/*")) == [run_dir]  # no new run: this one went on


def test_the_thread_count_a_run_chose_is_recorded_and_used_again(
    make_cfg, default_run, tmp_path, monkeypatch
) -> None:
    """`threads=auto` picks a count from the idle cores; the weights depend on it (1.6e-6 apart
    between 1 and 2 threads), so a rerun and a resume take the one the run chose."""
    threads = yaml.safe_load((default_run / "provenance.yaml").read_text())["threads"]
    assert isinstance(threads, int) and threads >= 1
    checkpoint = last_checkpoint(default_run)
    assert checkpoint["built_from"]["threads"] == threads
    rerun = expand_run_arguments(["src/train.py", f"rerun={default_run}"])
    assert f"threads={threads}" in rerun
    checkpoint["built_from"]["threads"] = 3  # a count this machine's idle cores would not give
    torch.save(checkpoint, tmp_path / "trained.ckpt")
    chosen: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", chosen.append)
    quiet = ["logger=none", "callbacks.early_stopping=null", "extras.print_config=false"]
    epochs = f"trainer.max_epochs={checkpoint['epoch'] + 2}"
    train(make_cfg(f"ckpt_path={tmp_path / 'trained.ckpt'}", epochs, *quiet))
    assert chosen == [3]


def test_max_time_stops_a_run_that_resumes_with_more_time(tmp_path) -> None:
    run_dir = tmp_path / "run"
    budget = ["+trainer.max_time=00:00:00:02", "trainer.max_epochs=1000", "logger=csv"]
    budget += ["callbacks.early_stopping=null", "extras.print_config=false"]
    first = run_script("train", *budget, f"hydra.run.dir={run_dir}")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Time limit reached" in first.stdout and "Ignoring" not in first.stdout
    stopped_at = last_checkpoint(run_dir)["global_step"]
    assert 0 < stopped_at < 1000 * STEPS_PER_EPOCH
    again = run_script("train", f"resume={run_dir}")
    assert again.returncode == 1
    assert "nothing left to train, the run has trained for 0:00:02, all of trainer.max_time" in (
        again.stderr
    )
    more = run_script("train", f"resume={run_dir}", "trainer.max_time=00:00:00:04")
    assert more.returncode == 0, more.stderr[-3000:]
    assert last_checkpoint(run_dir)["global_step"] > stopped_at


def test_each_command_reads_its_checkpoint_afresh(tmp_path: Path) -> None:
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": {"w": torch.tensor([1.0])}, "global_step": 1}, path)
    assert load_checkpoint(path, mmap=True)["global_step"] == 1  # kept for the command's checks
    # rewritten in place, the same size, at once: the next command reads the new file
    torch.save({"state_dict": {"w": torch.tensor([2.0])}, "global_step": 2}, path)
    resolve_checkpoint(str(path), tmp_path)
    assert load_checkpoint(path, mmap=True)["state_dict"]["w"].item() == 2.0
