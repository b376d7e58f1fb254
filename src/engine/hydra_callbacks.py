"""Hydra callbacks: what every job does around the entry point's work.

- `RunDirectory`: one process and one run per run directory, and the run's provenance.
- `RefusedResume`: a resume refused in one sentence leaves the run's records as they were.
- `EndDistributedJob`: the next job of a multirun starts DDP afresh in the same process.
- `SweepSummary`: a multirun's summary, current after each job and printed at the end.
"""

import atexit
import logging
import os
import platform
import shlex
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from src.engine.atomic import atomic_write
from src.engine.checkpoints import continued_checkpoint
from src.engine.launch import PARENT_WATCH, RENDEZVOUS
from src.engine.provenance import write_provenance
from src.engine.sweeps import ERROR_FILE, METRICS_FILE, print_sweep_summary, write_summary
from src.errors import ConfigError

log = logging.getLogger(__name__)
_SWEEP_LOCKS: list[FileLock] = []  # the sweep directories this process runs a sweep in


class RunDirectory(Callback):
    """Keeps a run directory to one process and one run, with provenance.

    - Before Hydra writes anything there, the process takes `.hydra/run.lock` (naming itself in
      it) and holds it while it lives; the system releases it when the process ends, killed or
      not. A second process for the same directory stops in one sentence naming the holder
      (`SystemExit`: Hydra turns a callback's exceptions into warnings).
    - A directory that is neither new, nor empty, nor a run (with its `.hydra/`) is never entered:
      a run would write over its files (`hydra.run.dir=.`).
    - A directory that holds checkpoints is entered only to resume them (`resume=<run dir>`,
      `ckpt_path=last`, a requeued SLURM job), never by a new run over the old one's history,
      nor by eval, predict or export.
    - Each job writes its provenance (`write_provenance`).
    - A run or sweep directory that cannot be written stops the process in one sentence.
    - A sweep directory is held (`multirun.lock`) by the process that runs the sweep, before
      Hydra writes there; one that holds an earlier sweep is entered only to continue it
      (`-m resume=<sweep dir>`, which sets `continue_run`), and its finished jobs keep their
      records. A joblib worker ends with the sweep's process (`PARENT_WATCH`).

    Skipped where Hydra saves no config (`hydra.output_subdir=null`), which is how Lightning
    re-launches the extra DDP ranks of a run into their run's directory.
    """

    def __init__(self) -> None:
        self.locks: dict[Path, FileLock] = {}
        self.sweep_process: int | None = None
        self.kept: dict[Path, dict[Path, bytes]] = {}  # a continued sweep's finished jobs' records

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._enter(config, Path(config.hydra.run.dir))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Before Hydra writes into the sweep directory: hold it (`multirun.lock`) for this sweep
        alone, and enter one that holds an earlier sweep only to continue it."""
        sweep_dir = Path(config.hydra.sweep.dir).resolve()
        if (jobs := earlier_jobs(sweep_dir)) is not None and not config.get("continue_run"):
            how = f"continue it with python src/train.py -m resume={sweep_dir}, or "
            raise SystemExit(
                f"{sweep_dir} holds an earlier sweep (jobs {jobs or 'none yet'}), which a new "
                f"sweep would write over; {how if training(config) else ''}give a new "
                f"hydra.sweep.dir"
            )
        if others := other_files(sweep_dir):
            raise SystemExit(
                f"{sweep_dir} holds files that are not a sweep of this template ({others}), "
                f"which a sweep would write over; give a new or empty hydra.sweep.dir"
            )
        _SWEEP_LOCKS.append(hold(sweep_dir, "multirun.lock"))  # until this process ends
        self.sweep_process = os.getpid()
        for metrics in sweep_dir.glob(f"*/{METRICS_FILE}"):
            records = (metrics.parent / ".hydra").glob("*.yaml")
            self.kept[metrics.parent] = {path: path.read_bytes() for path in records}

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.output_subdir is None:
            return
        run_dir = Path(config.hydra.runtime.output_dir)
        if config.hydra.mode == RunMode.MULTIRUN:
            if os.getppid() == self.sweep_process:  # a joblib worker
                PARENT_WATCH.job_started(run_dir)
            self._enter(config, run_dir)
            if records := self.kept.get(run_dir.resolve()):  # Hydra has just written over them
                for path, content in records.items():
                    with atomic_write(path) as file:
                        file.write(content)
                return
        write_provenance(run_dir, resumed=resuming(config, run_dir))

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        lock = self.locks.pop(Path(config.hydra.runtime.output_dir).resolve(), None)
        if lock is not None:  # a joblib worker goes on to other jobs
            lock.release()
        PARENT_WATCH.job_ended()

    def _enter(self, config: DictConfig, run_dir: Path) -> None:
        if config.hydra.output_subdir is None:
            return
        run_dir = run_dir.resolve()
        if run_dir.is_dir() and any(run_dir.iterdir()) and not (run_dir / ".hydra").is_dir():
            raise SystemExit(
                f"{run_dir} holds files that are not a run of this template, which a run would "
                f"write over; give a new or empty hydra.run.dir"
            )
        self.locks[run_dir] = hold(run_dir, ".hydra/run.lock")
        has_checkpoints = any((run_dir / "checkpoints").glob("*.ckpt"))
        if has_checkpoints and not resuming(config, run_dir):
            how = f"continue that run with resume={run_dir}, or " if training(config) else ""
            raise SystemExit(f"{run_dir} holds a run's checkpoints; {how}give a new hydra.run.dir")


def hold(directory: Path, lock_name: str) -> FileLock:
    """Take `directory`'s lock `lock_name` (released when the process ends, killed or not),
    naming this process in it; `SystemExit` naming the holder when another process has it."""
    lock_file = directory / lock_name
    lock = FileLock(lock_file, timeout=0)
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except Timeout:
        holder = lock_file.read_text().strip() or "another process"
        raise SystemExit(
            f"{directory} is in use by {holder}; wait for it to end or stop it, then try again"
        ) from None
    except OSError as error:
        raise unwritable(directory, error) from None
    lock_file.write_text(
        f"process {os.getpid()} on {platform.node()} ({shlex.join(sys.argv)}, since "
        f"{datetime.now():%Y-%m-%d %H:%M:%S})\n"
    )
    return lock


def earlier_jobs(sweep_dir: Path) -> str | None:
    """The jobs an earlier sweep left in `sweep_dir` (its job directories, "" for none yet when
    only its `multirun.yaml` is there); None when no sweep ran there."""
    jobs = sorted((p.parent.name for p in sweep_dir.glob("*/.hydra")), key=_job_order)
    if not jobs and not (sweep_dir / "multirun.yaml").is_file():
        return None
    return ", ".join(jobs[:5]) + ", ..." * (len(jobs) > 5)


def other_files(sweep_dir: Path) -> str:
    """The files in `sweep_dir`, when no sweep ran there and locks aside (a sweep would write
    over them); "" for a new or empty directory."""
    if not sweep_dir.is_dir() or earlier_jobs(sweep_dir) is not None:
        return ""
    return ", ".join(sorted(p.name for p in sweep_dir.iterdir() if p.suffix != ".lock")[:5])


def _job_order(name: str) -> tuple[bool, int | str]:
    return (not name.isdigit(), int(name) if name.isdigit() else name)


def training(config: DictConfig) -> bool:
    """Whether this job is a run of src/train.py."""
    return config.get("task_name") == "train"


def resuming(config: DictConfig, run_dir: Path) -> bool:
    """Whether this job trains on the run in `run_dir` from one of its checkpoints."""
    ckpt_path = continued_checkpoint(config, run_dir)
    return training(config) and (
        ckpt_path == "last"
        or (ckpt_path is not None and Path(ckpt_path).resolve().is_relative_to(run_dir.resolve()))
    )


class RefusedResume(Callback):
    """A resume refused in one sentence (a `ConfigError`: settings the checkpoint would
    overrule, nothing left to train) leaves the run's records as they were: before the job
    refused, Hydra had saved its config and overrides over the run's, and the job had added
    to its provenance and written its error file. Listed after the other callbacks, so that it
    restores them before they read them at the job's end."""

    RECORDS = (".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml")
    RECORDS += ("provenance.yaml", ERROR_FILE)

    def __init__(self) -> None:
        self.records: dict[Path, bytes | None] = {}

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(config.hydra.run.dir)
        if config.hydra.output_subdir is not None and resuming(config, run_dir):
            paths = [run_dir / name for name in self.RECORDS]
            self.records = {p: p.read_bytes() if p.is_file() else None for p in paths}

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        error = job_return._return_value  # its `return_value` would raise it
        if job_return.status != JobStatus.FAILED or not isinstance(error, ConfigError):
            return
        for path, content in self.records.items():
            if content is None:
                path.unlink(missing_ok=True)
            else:
                with atomic_write(path) as file:
                    file.write(content)


class EndDistributedJob(Callback):
    """After each job, end its process group and restore the rendezvous variables
    Lightning set when it started DDP ranks; else the next job of a multirun in this process
    would take them as ranks started for it, and wait for ranks that have exited."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.environ = {name: os.environ.get(name) for name in RENDEZVOUS}

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        distributed = sys.modules.get("torch.distributed")  # never imported by a failed config
        if distributed and distributed.is_available() and distributed.is_initialized():
            distributed.destroy_process_group()
        for name, value in self.environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def unwritable(directory: Path, error: OSError) -> SystemExit:
    """The one sentence that stops a run whose directory cannot be written."""
    return SystemExit(
        f"cannot write to {directory} ({error.strerror}); give a writable "
        "paths.log_dir (or hydra.run.dir, hydra.sweep.dir)"
    )


class SweepSummary(Callback):
    """After each multirun job, and after a sweep's job resumed on its own, rewrite `<sweep
    dir>/summary.csv` from the job directories (so it is current under parallel launchers,
    after a crash and when jobs fail) and log a failed job's error; when the sweep ends, print
    the summary best first by `metric` (`mode` min or max), with mean +- std over seeds when
    configurations ran with several.

    Hydra's launchers run every job of a sweep even when some fail, then raise the first
    failure (exit code 1) without calling `on_multirun_end`: the summary then prints as the
    process exits.
    """

    def __init__(self, metric: str, mode: str = "min") -> None:
        self.metric, self.mode = metric, mode

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        atexit.register(self._print, Path(config.hydra.sweep.dir))

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode == RunMode.MULTIRUN:
            sweep_dir = Path(config.hydra.sweep.dir)
            self._write(sweep_dir)
            if job_return.status == JobStatus.FAILED:
                log.error(
                    f"Job {config.hydra.job.num} failed; the sweep goes on. Summary: "
                    f"{sweep_dir / 'summary.csv'}"
                )
            return
        sweep_dir = Path(config.hydra.runtime.output_dir).parent
        if (sweep_dir / "summary.csv").is_file():  # a sweep's job resumed on its own
            self._write(sweep_dir)

    def _write(self, sweep_dir: Path) -> None:
        try:
            write_summary(sweep_dir, self.metric, self.mode)
        except OSError as error:  # a full disk: the final summary prints what it can
            log.error(f"Could not update {sweep_dir / 'summary.csv'} ({error})")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        atexit.unregister(self._print)
        self._print(Path(config.hydra.sweep.dir))

    def _print(self, sweep_dir: Path) -> None:
        print_sweep_summary(sweep_dir, self.metric, self.mode)
