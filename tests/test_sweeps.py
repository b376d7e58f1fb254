"""Multirun sweeps: every job runs, failures are recorded, and a summary ranks the jobs."""

import csv
from pathlib import Path

from omegaconf import OmegaConf

from src.utils.sweeps import SweepSummary
from tests.conftest import run_script

QUICK = ["trainer.max_epochs=1", "logger=none", "extras.print_config=false"]


def test_grid_with_a_failing_configuration_runs_and_summarises_every_job(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    # lr=1e30 makes the loss NaN: both of its seeds fail, the other two jobs still run
    grid = ["-m", "seed=0,1", "model.optimizer.lr=1e-2,1e30", f"hydra.sweep.dir={tmp_path}"]
    result = run_script("train", *grid, *QUICK)
    assert result.returncode == 1
    assert "FloatingPointError: train/loss is nan" in result.stderr
    assert "Job 1 failed; the sweep goes on" in result.stdout + result.stderr
    with open(tmp_path / "summary.csv") as file:
        rows = list(csv.DictReader(file))
    assert [row["status"] for row in rows] == ["ok", "ok", "failed", "failed"]
    assert float(rows[0]["val/loss"]) <= float(rows[1]["val/loss"])  # best first
    assert all("lr=0.01" in row["overrides"] for row in rows[:2])
    assert all("train/loss is nan" in row["error"] for row in rows[2:])
    assert all(Path(row["run_dir"], "metrics.json").is_file() for row in rows[:2])

    monkeypatch.setenv("COLUMNS", "200")  # the printed table, unwrapped
    SweepSummary("val/loss").on_multirun_end(
        OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    )
    printed = capsys.readouterr().out
    assert "Across seeds: mean +- std" in printed
    assert "model.optimizer.lr=0.01" in printed.split("Across seeds")[1]
