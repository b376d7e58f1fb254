"""A run directory: one process at a time, one run, and its provenance (command line, git state
with the diff when dirty, package versions)."""

import os
import platform
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock, Timeout
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from src.atomic import atomic_write
from src.utils.config import PROJECT_ROOT
from src.utils.launch import requeued_checkpoint


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def git_state() -> dict[str, Any]:
    """The project's `git_commit` and whether its tree is dirty (`git_dirty`); None outside git."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain")
    return {
        "git_commit": commit.strip() if commit else None,
        "git_dirty": bool(status.strip()) if status is not None else None,
    }


def write_provenance(run_dir: Path, resumed: bool) -> None:
    """Write `provenance.yaml` (command, git state, host, time), `git.diff` (only when the tree is
    dirty) and `requirements.txt`; a resumed run appends its own record to `resumes:` instead,
    keeping the original run's."""
    git = git_state()
    info = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "cwd": str(Path.cwd()),
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": platform.python_version(),
        **git,
    }
    path = run_dir / "provenance.yaml"
    if resumed and path.is_file():
        original = yaml.safe_load(path.read_text())
        info = original | {"resumes": [*original.get("resumes", []), info]}
    else:
        diff = _git("diff", "HEAD") if git["git_commit"] else None
        if diff:
            (run_dir / "git.diff").write_text(diff)
        packages = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions())
        (run_dir / "requirements.txt").write_text("\n".join(packages) + "\n")
    with atomic_write(path, "w") as file:
        yaml.safe_dump(info, file, sort_keys=False)


class RunDirectory(Callback):
    """Hydra callback that keeps a run directory to one process and one run, with provenance.

    - Before Hydra writes anything there, the process takes `.hydra/run.lock` (naming itself in
      it) and holds it while it lives; the system releases it when the process ends, killed or
      not. A second process for the same directory stops in one sentence naming the holder
      (`SystemExit`: Hydra turns a callback's exceptions into warnings).
    - A directory that holds checkpoints is entered only to resume them (`resume=<run dir>`,
      `ckpt_path=last`, a requeued SLURM job), never by a new run over the old one's history.
    - Each job writes its provenance (`write_provenance`).

    Skipped where Hydra saves no config (`hydra.output_subdir=null`), which is how Lightning
    re-launches the extra DDP ranks of a run into their run's directory.
    """

    def __init__(self) -> None:
        self.locks: dict[Path, FileLock] = {}

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._enter(config, Path(config.hydra.run.dir))

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.output_subdir is None:
            return
        run_dir = Path(config.hydra.runtime.output_dir)
        if config.hydra.mode == RunMode.MULTIRUN:
            self._enter(config, run_dir)
        write_provenance(run_dir, resumed=self._resuming(config, run_dir))

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        lock = self.locks.pop(Path(config.hydra.runtime.output_dir).resolve(), None)
        if lock is not None:  # a joblib worker goes on to other jobs
            lock.release()

    def _enter(self, config: DictConfig, run_dir: Path) -> None:
        if config.hydra.output_subdir is None:
            return
        run_dir = run_dir.resolve()
        lock_file = run_dir / ".hydra" / "run.lock"
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(lock_file, timeout=0)
        try:
            lock.acquire()
        except Timeout:
            holder = lock_file.read_text().strip() or "another process"
            raise SystemExit(
                f"{run_dir} is in use by {holder}; wait for it to end or stop it, then try again"
            ) from None
        lock_file.write_text(
            f"process {os.getpid()} on {platform.node()} ({shlex.join(sys.argv)}, since "
            f"{datetime.now():%Y-%m-%d %H:%M:%S})\n"
        )
        self.locks[run_dir] = lock
        has_checkpoints = any((run_dir / "checkpoints").glob("*.ckpt"))
        if has_checkpoints and not self._resuming(config, run_dir):
            raise SystemExit(
                f"{run_dir} holds a run's checkpoints; continue that run with "
                f"resume={run_dir}, or give a new hydra.run.dir"
            )

    @staticmethod
    def _resuming(config: DictConfig, run_dir: Path) -> bool:
        """Whether this job continues the run in `run_dir` (from one of its checkpoints)."""
        ckpt_path = requeued_checkpoint(config.get("ckpt_path"), run_dir)
        return ckpt_path == "last" or (
            ckpt_path is not None and Path(ckpt_path).resolve().is_relative_to(run_dir.resolve())
        )
