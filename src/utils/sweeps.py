"""Sweep summaries: each job's overrides, status, final metrics and run directory, best first."""

import atexit
import csv
import fcntl
import json
import logging
import math
import os
import statistics
from pathlib import Path
from typing import Any

import yaml
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"  # a job's final metrics, written when it succeeds
ERROR_FILE = "error.txt"  # a job's traceback, written when it fails


def write_json(path: Path, values: dict[str, Any]) -> None:
    """Write `values` as JSON atomically: readers see the whole file or none."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(values, indent=2, sort_keys=True))
    os.replace(temporary, path)


def collect(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per job directory of the sweep: job, overrides, status, error, metrics, run dir."""
    rows = []
    for overrides_file in sorted(sweep_dir.glob("*/.hydra/overrides.yaml")):
        job_dir = overrides_file.parent.parent
        metrics_file, error_file = job_dir / METRICS_FILE, job_dir / ERROR_FILE
        error = error_file.read_text().strip().splitlines()[-1] if error_file.is_file() else ""
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        status = "ok" if metrics else "failed" if error else "running"
        rows.append(
            {
                "job": job_dir.name,
                "overrides": yaml.safe_load(overrides_file.read_text()) or [],
                "status": status,
                "error": error,
                "metrics": metrics,
                "run_dir": str(job_dir),
            }
        )
    return rows


def ranked(rows: list[dict[str, Any]], metric: str, mode: str) -> list[dict[str, Any]]:
    """Successful jobs by `metric`, best first (`mode` min or max), then the others."""

    def key(row: dict[str, Any]) -> tuple[bool, float]:
        value = row["metrics"].get(metric, math.nan)
        if math.isnan(value):
            return True, 0.0
        return False, value if mode == "min" else -value

    return sorted(rows, key=key)


def varying_overrides(rows: list[dict[str, Any]]) -> set[str]:
    """The overrides not shared by every job (what tells the jobs apart)."""
    sets = [set(row["overrides"]) for row in rows]
    return set().union(*sets) - set.intersection(*sets) if sets else set()


def seed_groups(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Successful jobs grouped by the overrides that tell them apart, other than `seed=`."""
    varying = varying_overrides(rows)
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["status"] == "ok":
            kept = (o for o in row["overrides"] if o in varying and not o.startswith("seed="))
            config = " ".join(kept)
            groups.setdefault(config, []).append(row)
    return groups


class SweepSummary(Callback):
    """Hydra callback: after each multirun job, rewrite `<sweep dir>/summary.csv` from the job
    directories (so it is current under parallel launchers, after a crash and when jobs fail),
    and log a failed job's error; when the sweep ends, print the summary best first by `metric`
    (`mode` min or max), with mean +- std over seeds when configurations ran with several.

    Hydra's launchers run every job of a sweep even when some fail, then raise the first
    failure (exit code 1) without calling `on_multirun_end`: the summary then prints as the
    process exits.
    """

    def __init__(self, metric: str, mode: str = "min") -> None:
        self.metric, self.mode = metric, mode

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        atexit.register(self.print_sweep_summary, Path(config.hydra.sweep.dir))

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        summary = self._write(Path(config.hydra.sweep.dir))
        if job_return.status == JobStatus.FAILED:
            log.error(f"Job {config.hydra.job.num} failed; the sweep goes on. Summary: {summary}")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        atexit.unregister(self.print_sweep_summary)
        self.print_sweep_summary(Path(config.hydra.sweep.dir))

    def print_sweep_summary(self, sweep_dir: Path) -> None:
        """Rewrite summary.csv and print it as a table, with mean +- std over seeds."""
        self._write(sweep_dir)
        rows = ranked(collect(sweep_dir), self.metric, self.mode)
        console = Console()
        console.print(self._jobs_table(rows))
        groups = seed_groups(rows)
        if any(len(group) > 1 for group in groups.values()):
            console.print(self._seeds_table(groups))
        console.print(f"Jobs in {sweep_dir}/<job>; summary: {sweep_dir / 'summary.csv'}")

    def _write(self, sweep_dir: Path) -> Path:
        """Rewrite summary.csv under a lock (parallel jobs end at once); return its path."""
        with open(sweep_dir / ".summary.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            rows = ranked(collect(sweep_dir), self.metric, self.mode)
            names = sorted({name for row in rows for name in row["metrics"]})
            temporary = sweep_dir / ".summary.csv.tmp"
            with open(temporary, "w", newline="") as file:
                writer = csv.writer(file)
                writer.writerow(["job", "overrides", "status", "error", *names, "run_dir"])
                for row in rows:
                    values = [row["metrics"].get(name, "") for name in names]
                    overrides = " ".join(row["overrides"])
                    status = [row["status"], row["error"]]
                    writer.writerow([row["job"], overrides, *status, *values, row["run_dir"]])
            os.replace(temporary, sweep_dir / "summary.csv")
        return sweep_dir / "summary.csv"

    def _columns(self, rows: list[dict[str, Any]]) -> list[str]:
        """The metric optimised, then the test metrics, then training time."""
        names = {name for row in rows for name in row["metrics"]}
        tests = sorted(n for n in names if n.startswith("test/") and not n.endswith("_step"))
        extra = [n for n in ("time/train_s",) if n in names]
        return [self.metric, *(n for n in tests if n != self.metric), *extra]

    def _jobs_table(self, rows: list[dict[str, Any]]) -> Table:
        varying = varying_overrides(rows)
        columns = self._columns(rows)
        table = Table(title=f"Sweep: best {self.metric} ({self.mode}) first", header_style="bold")
        for name in ["job", "overrides", "status", *columns]:
            table.add_column(name, justify="right" if name in columns else "left")
        for row in rows:
            overrides = " ".join(o for o in row["overrides"] if o in varying)
            values = [_format(row["metrics"].get(name)) for name in columns]
            table.add_row(row["job"], overrides, row["status"], *values)
        return table

    def _seeds_table(self, groups: dict[str, list[dict[str, Any]]]) -> Table:
        columns = self._columns([row for group in groups.values() for row in group])
        table = Table(title="Across seeds: mean +- std", header_style="bold")
        for name in ["configuration", "seeds", *columns]:
            table.add_column(name, justify="left" if name == "configuration" else "right")
        for config, group in groups.items():
            cells = []
            for name in columns:
                values = [row["metrics"][name] for row in group if name in row["metrics"]]
                spread = statistics.stdev(values) if len(values) > 1 else 0.0
                cells.append(f"{statistics.mean(values):.4g} +- {spread:.2g}" if values else "")
            table.add_row(config or "(no overrides)", str(len(group)), *cells)
        return table


def _format(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"
