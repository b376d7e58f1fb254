"""Provenance of every run: command line, git state (with the diff when dirty), package versions."""

import platform
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from src.utils.config import PROJECT_ROOT


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def write_provenance(run_dir: Path) -> None:
    """Write `provenance.yaml`, `git.diff` (only when the tree is dirty) and `requirements.txt`."""
    commit = _git("rev-parse", "HEAD")
    diff = _git("diff", "HEAD") if commit else None
    status = _git("status", "--porcelain")
    info = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "cwd": str(Path.cwd()),
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": platform.python_version(),
        "git_commit": commit.strip() if commit else None,
        "git_dirty": bool(status.strip()) if status is not None else None,
    }
    with open(run_dir / "provenance.yaml", "w") as file:
        yaml.safe_dump(info, file, sort_keys=False)
    if diff:
        (run_dir / "git.diff").write_text(diff)
    packages = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions())
    (run_dir / "requirements.txt").write_text("\n".join(packages) + "\n")


class SaveProvenance(Callback):
    """Hydra callback: write provenance into each job's output directory as the job starts.

    Skipped where Hydra saves no config (`hydra.output_subdir=null`), which is how Lightning
    re-launches the extra DDP ranks of a run: one run directory, written once.
    """

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.output_subdir is not None:
            write_provenance(Path(config.hydra.runtime.output_dir))
