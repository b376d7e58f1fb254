"""Multirun sweeps: every job runs, failures are recorded, and a summary ranks the jobs."""

import csv
import errno
import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch
import yaml
from filelock import FileLock

from src.engine.arguments import expand_run_arguments
from src.engine.sweeps import collect, print_sweep_summary, sweep_figures
from tests.conftest import run_script, start_script

QUICK = ["trainer.max_epochs=1", "logger=none", "extras.print_config=false"]


def test_grid_with_failing_jobs_runs_every_job_and_ends_with_the_summary(tmp_path: Path) -> None:
    # lr=1e30 diverges: its batches are skipped, val/loss is NaN (the best checkpoint's: inf), and
    # a run without a finite result fails
    grid = ["-m", "seed=0,1", "model.optimizer.lr=1e-2,1e30", f"hydra.sweep.dir={tmp_path}"]
    result = run_script("train", *grid, "model.nonfinite_loss=skip", *QUICK)
    assert result.returncode == 1
    assert "val/loss has no finite value (best: inf): the run has no result" in result.stderr
    assert "Job 1 failed; the sweep goes on" in result.stdout + result.stderr
    with open(tmp_path / "summary.csv") as file:
        rows = list(csv.DictReader(file))
    assert [row["status"] for row in rows] == ["ok", "ok", "failed", "failed"]
    assert float(rows[0]["best/val/loss"]) <= float(rows[1]["best/val/loss"])  # best first
    assert all("lr=0.01" in row["overrides"] for row in rows[:2])
    assert all("val/loss has no finite value" in row["error"] for row in rows[2:])
    assert all(Path(row["run_dir"], "metrics.json").is_file() for row in rows[:2])
    assert not any(Path(row["run_dir"], "metrics.json").exists() for row in rows[2:])
    # the summary tables print even though Hydra ends the sweep on the first failure
    assert "Sweep, by best/val/loss (min)" in result.stdout
    seeds = result.stdout.split("Across seeds and folds: mean +- std")[1]
    assert "model.optimizer.lr=0.01" in seeds
    with open(tmp_path / "summary_seeds.csv") as file:
        (across,) = list(csv.DictReader(file))  # one configuration, two seeds
    assert across["runs"] == "2" and float(across["val/loss std"]) >= 0


def test_folds_are_summarised_like_seeds(tmp_path: Path) -> None:
    folds = ["-m", "data.folds=3", "data.fold=0,1,2", f"hydra.sweep.dir={tmp_path}"]
    result = run_script("train", *folds, *QUICK)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "summary_seeds.csv") as file:
        (across,) = list(csv.DictReader(file))  # one configuration, three folds
    assert across["runs"] == "3" and float(across["best/val/loss std"]) > 0
    assert "Across seeds and folds: mean +- std" in result.stdout
    assert not list(tmp_path.glob("summary_*.png"))  # the fold is no setting to compare


def test_ctrl_c_stops_a_sweep_with_its_job_marked_stopped_until_resumed(tmp_path) -> None:
    sweep = ["-m", "seed=0,1", "trainer.max_epochs=1000", f"hydra.sweep.dir={tmp_path}"]
    process = start_script("train", *sweep, "logger=none", "extras.print_config=false")
    deadline = time.monotonic() + 120
    while not (tmp_path / "0" / "checkpoints" / "last.ckpt").exists():
        assert process.poll() is None and time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, _ = process.communicate(timeout=120)
    assert process.returncode == 1
    with open(tmp_path / "summary.csv") as file:
        (row,) = list(csv.DictReader(file))  # the sweep stops: job 1 never starts
    assert row["status"] == "stopped"
    resume = f"python src/train.py resume={tmp_path / '0'}"
    assert row["error"] == f"Stopped by Ctrl-C after checkpointing; resume with: {resume}"
    assert "stopped" in stdout.split("Sweep, by best/val/loss (min)")[1]
    # a refused resume leaves it as it was; the job resumed on its own brings the summary up to date
    refused = run_script("train", f"resume={tmp_path / '0'}", "model.optimizer.lr=0.5")
    assert refused.returncode == 1 and "model.optimizer.lr=0.5 differs from" in refused.stderr
    with open(tmp_path / "summary.csv") as file:
        assert list(csv.DictReader(file)) == [row]
    epochs = torch.load(tmp_path / "0" / "checkpoints" / "last.ckpt", weights_only=True)["epoch"]
    resumed = run_script("train", f"resume={tmp_path / '0'}", f"trainer.max_epochs={epochs + 2}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    with open(tmp_path / "summary.csv") as file:
        (row,) = list(csv.DictReader(file))
    assert (row["status"], row["error"]) == ("ok", "")
    assert "ckpt_path" not in row["overrides"]  # how it went on is not what it is
    assert (
        float(row["val/loss"])
        == json.loads((tmp_path / "0" / "metrics.json").read_text())["val/loss"]
    )


def test_sweep_pictures_plot_each_setting_with_seeds_as_error_bars() -> None:
    rows = [
        {"overrides": [f"seed={seed}", f"model.optimizer.lr={lr}"], "status": "ok"}
        | {"metrics": {"val/loss": lr * 10 + seed}}
        for lr in (0.1, 0.01, 0.001)
        for seed in (0, 1)
    ]
    rows.append(
        {"overrides": ["seed=0", "model.optimizer.lr=1e30"], "status": "failed", "metrics": {}}
    )
    ((key, figure),) = sweep_figures(rows, "val/loss").items()
    assert key == "model.optimizer.lr"  # not the seed
    ax = figure.axes[0]
    assert len(ax.collections[0].get_offsets()) == 6  # a dot per successful job
    means = ax.lines[0]
    assert list(means.get_xdata()) == [0.001, 0.01, 0.1]
    assert list(means.get_ydata()) == pytest.approx([0.51, 0.6, 1.5])
    assert ax.get_xscale() == "log"


def test_the_summary_survives_what_jobs_leave_behind_and_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, caplog
) -> None:
    def job(number: int, error: bytes | None = None, metrics: str | None = None) -> Path:
        job_dir = tmp_path / str(number)
        (job_dir / ".hydra").mkdir(parents=True)
        (job_dir / ".hydra" / "overrides.yaml").write_text(f"- seed={number}\n")
        if error is not None:
            (job_dir / "error.txt").write_bytes(error)
        if metrics is not None:
            (job_dir / "metrics.json").write_text(metrics)
        return job_dir

    job(0, metrics='{"best/val/loss": 0.5}')
    job(1, error=b"")  # the disk was full when it failed
    job(2, error=b"\xff\xfe")
    job(3, metrics='{"best/val/loss": 0.')  # cut short
    job(4, metrics='{"best/val/loss": "low"}')
    job(5).joinpath(".hydra", "overrides.yaml").write_text("seed: 5")
    job(7, metrics='{"best/val/loss": 0.7}').joinpath(".hydra", "overrides.yaml").write_text(
        "- seed=7\n- trainer.m"  # cut short, yet YAML
    )
    (tmp_path / "6" / ".hydra").mkdir(parents=True)  # killed before Hydra saved its records
    rows = {row["job"]: row for row in collect(tmp_path)}
    assert sorted(rows) == ["0", "1", "2", "3", "4", "5", "7"]
    assert rows["0"]["status"] == rows["7"]["status"] == "ok"
    assert {rows[n]["status"] for n in "12345"} == {"failed"}
    assert rows["1"]["error"].endswith("error.txt is empty: the job ended without saying why")
    assert "error.txt is unreadable" in rows["2"]["error"]
    assert "metrics.json is unreadable" in rows["3"]["error"]
    assert "metrics.json holds no metrics" in rows["4"]["error"]
    assert "overrides.yaml is not a list of overrides" in rows["5"]["error"]

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("src.engine.sweeps.atomic_write", full_disk)
    print_sweep_summary(tmp_path, "best/val/loss", "min")
    assert "Could not write the summary" in caplog.text and "No space left" in caplog.text
    table = capsys.readouterr().out.split("Sweep, by best/val/loss (min)")[1]
    assert table.count("failed") == 5 and "0.5" in table


# four jobs of 400 steps each: checkpoints at steps 100, 200 and 300 come mid-job
GRID = ["seed=0,1", "model.optimizer.lr=0.05,0.1", "trainer.max_epochs=8"]
GRID += ["callbacks.early_stopping=null", "extras.print_config=false"]


def summary_rows(sweep_dir: Path) -> list[dict[str, str]]:
    """The sweep's summary, without what differs between two runs of it: where and how fast."""
    with open(sweep_dir / "summary.csv") as file:
        rows = list(csv.DictReader(file))
    return [{k: v for k, v in row.items() if k != "run_dir" and "time/" not in k} for row in rows]


def killed_sweep(sweep_dir: Path, *args: str, running: tuple[str, ...]) -> list[int]:
    """Start a sweep of `GRID` with `args` into `sweep_dir`, SIGKILL its process once each job of
    `running` has a checkpoint, and return the processes it had started (joblib's workers)."""
    process = start_script("train", "-m", *GRID, *args, f"hydra.sweep.dir={sweep_dir}")
    deadline = time.monotonic() + 180
    while not all((sweep_dir / job / "checkpoints" / "last.ckpt").exists() for job in running):
        assert process.poll() is None and time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.02)
    children = [
        int(line.split()[0])
        for line in os.popen(f"ps -o pid= --ppid {process.pid}").read().splitlines()
    ]
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return children


def running(pid: int) -> bool:
    """Whether process `pid` runs (an ended one no process has waited for is a zombie, Z)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.fixture(scope="module")
def uninterrupted_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sweep_dir = tmp_path_factory.mktemp("uninterrupted")
    result = run_script("train", "-m", *GRID, f"hydra.sweep.dir={sweep_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep_dir


def test_a_killed_sweep_continues_as_a_whole_with_one_command(
    tmp_path: Path, uninterrupted_sweep: Path
) -> None:
    killed_sweep(tmp_path, running=("1",))  # job 0 done, job 1 mid-way, jobs 2 and 3 not begun
    assert (tmp_path / "0" / "metrics.json").is_file()
    assert not (tmp_path / "2").exists()
    records = {p: p.read_bytes() for p in (tmp_path / "0").glob(".hydra/*.yaml")}
    again = run_script("train", "-m", *GRID, f"hydra.sweep.dir={tmp_path}")
    assert again.returncode == 1
    assert f"{tmp_path} holds an earlier sweep (jobs 0, 1), which a new sweep would" in again.stderr
    assert f"continue it with python src/train.py -m resume={tmp_path}" in again.stderr
    continued = run_script("train", "-m", f"resume={tmp_path}")
    assert continued.returncode == 0, continued.stderr[-3000:]
    assert "This job finished earlier; its result is kept" in continued.stdout
    # the finished job kept its records, the killed one resumed exactly, the others ran
    assert {p: p.read_bytes() for p in records} == records
    assert summary_rows(tmp_path) == summary_rows(uninterrupted_sweep)
    assert [row["status"] for row in summary_rows(tmp_path)] == ["ok"] * 4
    # killed after its training, before it was tested: the continued job tests the same checkpoint
    (tmp_path / "3" / "metrics.json").unlink()
    continued = run_script("train", "-m", f"resume={tmp_path}")
    assert continued.returncode == 0, continued.stderr[-3000:]
    assert "This job's training had ended: testing its best checkpoint" in continued.stdout
    judged = ("best/val/loss", "best/epoch", "best/step", "test/acc", "test/loss")
    tested, expected = summary_rows(tmp_path), summary_rows(uninterrupted_sweep)
    assert [[r[k] for k in judged] for r in tested] == [[r[k] for k in judged] for r in expected]
    metrics = json.loads((tmp_path / "3" / "metrics.json").read_text())
    assert not [name for name in metrics if name.startswith(("train/", "time/train"))]  # not run
    # a finished job's metrics.json cut short: the job goes on from its checkpoints
    (tmp_path / "3" / "metrics.json").write_text('{"best/val/loss": 0.')
    continued = run_script("train", "-m", f"resume={tmp_path}")
    assert continued.returncode == 0, continued.stderr[-3000:]
    assert "metrics.json is unreadable" in continued.stdout
    assert [[r[k] for k in judged] for r in summary_rows(tmp_path)] == [
        [r[k] for k in judged] for r in expected
    ]


@pytest.mark.slow
def test_a_killed_joblib_sweep_ends_its_workers_and_continues(
    tmp_path: Path, uninterrupted_sweep: Path
) -> None:
    joblib = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    workers = killed_sweep(tmp_path, *joblib, running=("0", "1"))
    deadline = time.monotonic() + 60
    while alive := [pid for pid in workers if running(pid)]:
        assert time.monotonic() < deadline, f"workers {alive} outlived their sweep"
        time.sleep(0.2)
    finished = {row["job"] for row in collect(tmp_path) if row["status"] == "ok"}
    continued = run_script("train", "-m", f"resume={tmp_path}", *joblib)
    assert continued.returncode == 0, continued.stderr[-3000:]
    rows, expected = summary_rows(tmp_path), summary_rows(uninterrupted_sweep)
    assert [row["status"] for row in rows] == ["ok"] * 4
    labels = ("job", "overrides", "status")
    assert sorted([row[k] for k in labels] for row in rows) == sorted(
        [row[k] for k in labels] for row in expected
    )
    assert [row for row in rows if row["job"] in finished] == [
        row for row in expected if row["job"] in finished
    ]


def test_a_sweep_directory_is_held_by_one_sweep_and_continued_only_as_it_began(
    tmp_path: Path,
) -> None:
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "README.md").write_text("mine")
    refused = run_script("train", "-m", "seed=0,1", f"hydra.sweep.dir={foreign}")
    assert refused.returncode == 1
    assert "holds files that are not a sweep of this template (README.md)" in refused.stderr
    assert sorted(p.name for p in foreign.iterdir()) == ["README.md"]
    busy = tmp_path / "busy"
    busy.mkdir()
    with FileLock(busy / "multirun.lock"):  # a sweep starting there at this moment
        refused = run_script("train", "-m", "seed=0,1", f"hydra.sweep.dir={busy}")
    assert refused.returncode == 1 and f"{busy} is in use by" in refused.stderr
    assert sorted(p.name for p in busy.iterdir()) == ["multirun.lock"]
    record = {
        "task_name": "train",
        "hydra": {"overrides": {"task": ["seed=0,1"], "hydra": ["hydra.mode=MULTIRUN"]}},
    }
    (busy / "multirun.yaml").write_text(yaml.safe_dump(record))
    changed = run_script("train", "-m", f"resume={busy}", "model.optimizer.lr=0.5")
    assert changed.returncode == 1
    assert "model.optimizer.lr=0.5 would change the jobs of a sweep" in changed.stderr
    record["hydra"]["overrides"]["hydra"].append("hydra.job.env_set.PYTHONPATH=/tmp")
    (busy / "multirun.yaml").write_text(yaml.safe_dump(record))
    crafted = run_script("train", "-m", f"resume={busy}")
    assert crafted.returncode == 1
    assert "the saved override 'hydra.job.env_set.PYTHONPATH=/tmp' sets Hydra" in crafted.stderr
    record["hydra"]["overrides"]["hydra"][-1] = "hydra.launcher.n_jobs=2"
    record["hydra"]["overrides"]["task"].append("model.net={_target_:os.system,_args_:[ls]},null")
    (busy / "multirun.yaml").write_text(yaml.safe_dump(record))
    crafted = run_script("train", "-m", f"resume={busy}")
    assert crafted.returncode == 1
    assert "names os.system, from a module the configuration does not trust" in crafted.stderr
    assert sorted(p.name for p in busy.iterdir()) == ["multirun.lock", "multirun.yaml"]


def test_a_continued_sweep_runs_its_recorded_overrides_as_written(tmp_path: Path) -> None:
    record = {
        "task_name": "train",
        "seed": 0,
        "hydra": {
            "overrides": {
                "task": ["seed=1,2", "trainer.min_epochs=${seed}"],
                "hydra": ["hydra/launcher=joblib", f"hydra.sweep.dir={tmp_path}"],
            }
        },
    }
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump(record))
    argv = expand_run_arguments(["train.py", "-m", f"resume={tmp_path}"])
    assert argv == [
        "train.py",
        "--multirun",
        "seed=1,2",
        "trainer.min_epochs=${seed}",  # each job's own seed, as the sweep began
        "hydra/launcher=joblib",
        f"hydra.sweep.dir='{tmp_path}'",
        "continue_run=true",
    ]
