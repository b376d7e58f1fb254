"""Sweep summaries: each job's overrides, status, final metrics and run directory, best first;
mean +- std over the seeds and folds of each configuration."""

import csv
import json
import logging
import math
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from filelock import FileLock
from rich.table import Table

from src.engine.atomic import atomic_write
from src.engine.console import console
from src.errors import Stopped

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"  # a job's final metrics, written when it succeeds
ERROR_FILE = "error.txt"  # a job's traceback when it fails, how to resume it when stopped
# what `resume=` adds to a job's overrides: how it went on, not what it is
RESUMED = ("ckpt_path=last", "logger.wandb.id=", "continue_run=")
# the settings that repeat a configuration: its statistics are over them
REPEATS = ("seed", "data.fold")


def write_json(path: Path, values: dict[str, Any]) -> None:
    """Write `values` as JSON atomically: readers see the whole file or none."""
    with atomic_write(path, "w") as file:
        json.dump(values, file, indent=2, sort_keys=True)


def collect(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per job directory of the sweep: job, overrides, status, error, metrics, run dir.

    Whatever a job left behind (an empty or unreadable `error.txt` or `metrics.json`, as a full
    disk leaves them) makes it a failed job that says so, never a failed summary."""
    rows = []
    for overrides_file in sorted(sweep_dir.glob("*/.hydra/overrides.yaml")):
        job_dir = overrides_file.parent.parent
        error, metrics = _error(job_dir / ERROR_FILE), {}
        try:
            if (job_dir / METRICS_FILE).is_file():
                metrics = read_metrics(job_dir / METRICS_FILE)
            overrides = _overrides(overrides_file)  # a resumed job's: its own
        except (OSError, ValueError) as problem:
            error, metrics, overrides = str(problem), {}, []
        stopped = error.startswith(Stopped.PREFIX)
        status = "ok" if metrics else "stopped" if stopped else "failed" if error else "running"
        rows.append(
            {
                "job": job_dir.name,
                "overrides": [o for o in overrides if not o.startswith(RESUMED)],
                "status": status,
                "error": error,
                "metrics": metrics,
                "run_dir": str(job_dir),
            }
        )
    return rows


def _error(path: Path) -> str:
    """The last line of a job's error file: what ended it; "" when there is none."""
    try:
        lines = path.read_text().strip().splitlines()
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as problem:
        return f"{path} is unreadable ({problem})"
    return lines[-1] if lines else f"{path} is empty: the job ended without saying why"


def read_metrics(path: Path) -> dict[str, float]:
    """A job's final metrics; `ValueError` naming the file when it holds none."""
    try:
        metrics = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as problem:
        raise ValueError(f"{path} is unreadable ({problem})") from None
    numbers = isinstance(metrics, dict) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in metrics.values()
    )
    if not metrics or not numbers:
        raise ValueError(f"{path} holds no metrics (a JSON object of numbers)")
    return metrics


def _overrides(path: Path) -> list[str]:
    """A job's overrides as Hydra saved them; `ValueError` naming the file otherwise."""
    try:
        overrides = yaml.safe_load(path.read_text()) or []
    except (UnicodeDecodeError, yaml.YAMLError) as problem:
        raise ValueError(f"{path} is unreadable ({problem})") from None
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise ValueError(f"{path} is not a list of overrides")
    return overrides


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


def repeat_statistics(groups: dict[str, list[dict[str, Any]]], names: list[str]) -> list[dict]:
    """Per configuration: how many runs (seeds, folds) and each metric's mean and standard
    deviation over them."""
    statistics_rows = []
    for config, group in groups.items():
        row: dict[str, Any] = {"configuration": config or "(no overrides)", "runs": len(group)}
        for name in names:
            values = [job["metrics"][name] for job in group if name in job["metrics"]]
            if values:
                spread = statistics.stdev(values) if len(values) > 1 else 0.0
                row |= {f"{name} mean": statistics.mean(values), f"{name} std": spread}
        statistics_rows.append(row)
    return statistics_rows


def repeat_groups(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Successful jobs grouped by the overrides that tell them apart, other than the `REPEATS`
    (`seed=`, `data.fold=`)."""
    varying = varying_overrides(rows)
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["status"] == "ok":
            kept = (o for o in row["overrides"] if o in varying and o.split("=")[0] not in REPEATS)
            config = " ".join(kept)
            groups.setdefault(config, []).append(row)
    return groups


def write_summary(sweep_dir: Path, metric: str, mode: str) -> Path:
    """Rewrite summary.csv (and summary_seeds.csv, when configurations ran with several seeds or
    folds)
    from the job directories, best `metric` first (`mode` min or max), under `summary.lock`, as
    parallel jobs end at once; return its path."""
    with FileLock(sweep_dir / "summary.lock"):
        rows = ranked(collect(sweep_dir), metric, mode)
        names = sorted({name for row in rows for name in row["metrics"]})
        table = [
            {"job": row["job"], "overrides": " ".join(row["overrides"]), "status": row["status"]}
            | {"error": row["error"], **row["metrics"], "run_dir": row["run_dir"]}
            for row in rows
        ]
        columns = ["job", "overrides", "status", "error", *names, "run_dir"]
        _write_csv(sweep_dir / "summary.csv", columns, table)
        groups = repeat_groups(rows)
        if any(len(group) > 1 for group in groups.values()):
            stats = [f"{n} {s}" for n in names for s in ("mean", "std")]
            seeds = repeat_statistics(groups, names)
            _write_csv(sweep_dir / "summary_seeds.csv", ["configuration", "runs", *stats], seeds)
    return sweep_dir / "summary.csv"


def print_sweep_summary(sweep_dir: Path, metric: str, mode: str) -> None:
    """Rewrite the summary files, draw the sweep's pictures, and print the summary as tables;
    files that cannot be written (a full disk) are named in one line, and the tables still
    print."""
    try:
        write_summary(sweep_dir, metric, mode)
    except OSError as error:
        log.error(f"Could not write the summary in {sweep_dir} ({error}); it follows here")
    rows = ranked(collect(sweep_dir), metric, mode)
    for key, figure in sweep_figures(rows, metric).items():
        path = sweep_dir / f"summary_{key.replace('/', '.')}.png"
        try:
            figure.savefig(path, dpi=100)
        except OSError as error:
            log.error(f"Could not draw {path} ({error})")
    columns = _columns(rows, metric)
    out = console()
    out.print(_jobs_table(rows, columns, f"Sweep, by {metric} ({mode})"))
    groups = repeat_groups(rows)
    if any(len(group) > 1 for group in groups.values()):
        out.print(_seeds_table(groups, columns))
        out.print(f"Across seeds and folds: {sweep_dir / 'summary_seeds.csv'}", highlight=False)
    out.print(f"Jobs in {sweep_dir}/<job>; summary: {sweep_dir / 'summary.csv'}", highlight=False)


def sweep_figures(rows: list[dict[str, Any]], metric: str) -> dict[str, "Figure"]:
    """For each setting the sweep varies (other than the `REPEATS`), `metric` of its successful jobs
    against the setting's values: each job a dot, and the mean over the jobs of each value with
    their standard deviation (seeds, folds, other settings) as error bars."""
    done = [row for row in rows if row["status"] == "ok" and metric in row["metrics"]]
    keys = sorted({o.split("=", 1)[0] for o in varying_overrides(done)} - set(REPEATS))
    figures = {}
    for key in keys:
        values = [dict(o.partition("=")[::2] for o in row["overrides"]).get(key) for row in done]
        results = [row["metrics"][metric] for row in done]
        figures[key] = _setting_figure(key, values, results, metric)
    return figures


def _setting_figure(key: str, values: list[str], results: list[float], metric: str) -> "Figure":
    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt

    numeric = all(_is_number(v) for v in values)
    order = sorted(set(values), key=float) if numeric else list(dict.fromkeys(values))
    x = {v: float(v) if numeric else i for i, v in enumerate(order)}
    by_value = {
        v: [r for value, r in zip(values, results, strict=True) if value == v] for v in order
    }
    figure, ax = plt.subplots(figsize=(5, 3.5))
    ax.scatter([x[v] for v in values], results, s=12, alpha=0.5)
    spreads = [statistics.stdev(by_value[v]) if len(by_value[v]) > 1 else 0.0 for v in order]
    means = [statistics.mean(by_value[v]) for v in order]
    ax.errorbar([x[v] for v in order], means, yerr=spreads, capsize=3)
    if numeric and min(x.values()) > 0 and max(x.values()) >= 100 * min(x.values()):
        ax.set_xscale("log")
    elif not numeric:
        ax.set_xticks(range(len(order)), order)
    ax.set(xlabel=key, ylabel=metric, title=f"{metric} by {key}")
    figure.tight_layout()
    return figure


def _is_number(value: str | None) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _columns(rows: list[dict[str, Any]], metric: str) -> list[str]:
    """The metric optimised, then the test metrics, then training time."""
    names = {name for row in rows for name in row["metrics"]}
    tests = sorted(n for n in names if n.startswith("test/") and not n.endswith("_step"))
    extra = [n for n in ("time/train_s",) if n in names]
    return [metric, *(n for n in tests if n != metric), *extra]


def _jobs_table(rows: list[dict[str, Any]], columns: list[str], title: str) -> Table:
    varying = varying_overrides(rows)
    table = Table(title=title, header_style="bold")
    for name in ["job", "overrides", "status", *columns]:
        table.add_column(name, justify="right" if name in columns else "left")
    for row in rows:
        overrides = " ".join(o for o in row["overrides"] if o in varying)
        values = [_format(row["metrics"].get(name)) for name in columns]
        table.add_row(row["job"], overrides, row["status"], *values)
    return table


def _seeds_table(groups: dict[str, list[dict[str, Any]]], columns: list[str]) -> Table:
    table = Table(title="Across seeds and folds: mean +- std", header_style="bold")
    for name in ["configuration", "runs", *columns]:
        table.add_column(name, justify="left" if name == "configuration" else "right")
    for row in repeat_statistics(groups, columns):
        cells = [
            f"{row[f'{n} mean']:.4g} +- {row[f'{n} std']:.2g}" if f"{n} mean" in row else ""
            for n in columns
        ]
        table.add_row(row["configuration"], str(row["runs"]), *cells)
    return table


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """Write `rows` under the header `columns` as a CSV file, atomically."""
    with atomic_write(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def _format(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"
