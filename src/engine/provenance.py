"""Provenance of every run: command line, git state (with the diff when dirty), package versions."""

import math
import platform
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from src.engine.atomic import atomic_write
from src.engine.config import PROJECT_ROOT


def _git(*args: str, ok: tuple[int, ...] = (0,)) -> str | None:
    """What git prints, or None when it fails (exit codes other than `ok`) or is missing."""
    try:
        result = subprocess.run(
            ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode in ok else None


def git_diff(largest_new_file: int = 1 << 20) -> str:
    """The tree's changes against HEAD, new files (untracked, not ignored, up to 1 MiB: code, not
    data) included: the code a dirty tree runs."""
    listed = (_git("ls-files", "--others", "--exclude-standard", "-z") or "").split("\0")
    new_files = [f for f in listed if f and _size(PROJECT_ROOT / f) <= largest_new_file]
    added = (_git("diff", "--no-index", "--", "/dev/null", f, ok=(0, 1)) for f in new_files)
    return (_git("diff", "HEAD") or "") + "".join(diff or "" for diff in added)


def _size(path: Path) -> float:
    return path.stat().st_size if path.is_file() else math.inf  # a broken link: skipped


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
    dirty, new files included) and `requirements.txt`; a resumed run appends its own record to
    `resumes:` instead, keeping the original run's."""
    git = git_state()
    info = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "cwd": str(Path.cwd()),
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": platform.python_version(),
        **git,
    }
    path = run_dir / "provenance.yaml"
    if resumed and path.is_file():
        original = yaml.safe_load(path.read_text())
        info = original | {"resumes": [*original.get("resumes", []), info]}
    else:
        diff = git_diff() if git["git_commit"] else None
        if diff:
            (run_dir / "git.diff").write_text(diff)
        found = (d.metadata for d in metadata.distributions())  # parsed once each
        packages = sorted(f"{meta['Name']}=={meta['Version']}" for meta in found)
        (run_dir / "requirements.txt").write_text("\n".join(packages) + "\n")
    with atomic_write(path, "w") as file:
        yaml.safe_dump(info, file, sort_keys=False)


def note_provenance(run_dir: Path, **values: Any) -> None:
    """Add `values` (what the run chose as it started: its thread count) to its provenance:
    to the newest record, the resume's own when it resumed."""
    path = run_dir / "provenance.yaml"
    if not path.is_file():  # a run without Hydra's records (started from Python)
        return
    info = yaml.safe_load(path.read_text())
    newest = info["resumes"][-1] if info.get("resumes") else info
    newest.update(values)
    with atomic_write(path, "w") as file:
        yaml.safe_dump(info, file, sort_keys=False)
