"""Finding the checkpoint a run resumes from or evaluates, and loading checkpoints safely."""

from pathlib import Path
from typing import Any

import yaml

from src.utils.config import ConfigError

# what a run directory resumes from: the newest of these
RESUMABLE = ("last.ckpt", "on_exception.ckpt")


def resolve_checkpoint(ckpt_path: str | None, run_dir: Path) -> str | None:
    """The checkpoint file meant by `ckpt_path`, checked to load safely; None to start afresh.

    `last` means this run directory's newest `checkpoints/last.ckpt` or
    `checkpoints/on_exception.ckpt` (point `hydra.run.dir` at an earlier run to continue it in
    place); a run directory means its newest of those; anything else is a checkpoint file. A
    path that leads to no file is an error, never a silent fresh start.
    """
    if ckpt_path is None:
        return None
    path = run_dir if ckpt_path == "last" else Path(ckpt_path).expanduser()
    if path.is_dir():
        path = latest_checkpoint(path)
    if not path.is_file():
        raise ConfigError(
            f"ckpt_path={ckpt_path}: no checkpoint at {path}; give a .ckpt file, a run directory "
            f"with checkpoints/last.ckpt, or ckpt_path=last with hydra.run.dir=<that run directory>"
        )
    load_checkpoint(path, mmap=True)  # tensors mapped, not read: seconds even for big models
    return str(path.resolve())


def latest_checkpoint(run_dir: Path) -> Path:
    """The newest of the run's `checkpoints/last.ckpt`, `checkpoints/on_exception.ckpt` and
    `hpc_ckpt_<n>.ckpt` (Lightning's, on SLURM's requeue signal) (`last.ckpt`, maybe missing, when
    it has none)."""
    paths = [run_dir / "checkpoints" / name for name in RESUMABLE]
    paths += sorted(run_dir.glob("hpc_ckpt_*.ckpt"))
    return max((p for p in paths if p.is_file()), key=lambda p: p.stat().st_mtime, default=paths[0])


def load_checkpoint(path: str | Path, mmap: bool = False) -> dict[str, Any]:
    """`torch.load` a checkpoint as plain data only (`weights_only=True`): a file that is
    truncated, corrupt or carries code (a pickle that would run it) raises `ConfigError`."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as error:  # zip, pickle and storage errors alike
        reason = str(error).strip().splitlines()[0]
        raise ConfigError(
            f"checkpoint {path} cannot be loaded safely ({reason}); it is truncated, corrupt or "
            f"holds code rather than weights: give a checkpoint this template wrote"
        ) from error


def expand_resume(argv: list[str]) -> list[str]:
    """Replace `resume=<run dir>` in a command line with that run's saved overrides,
    `hydra.run.dir=<run dir>`, `ckpt_path=last` and its W&B run id (so the same W&B run
    continues); the command line's other arguments follow and win."""
    resume = [arg for arg in argv[1:] if arg.startswith("resume=")]
    if not resume:
        return argv
    run_dir = Path(resume[-1].removeprefix("resume=")).expanduser().resolve()
    overrides_file = run_dir / ".hydra" / "overrides.yaml"
    if not overrides_file.is_file():
        raise SystemExit(
            f"{resume[-1]}: {overrides_file} is missing; give the directory of a run this "
            f"template started (logs/<task>/runs/<run>)"
        )
    replaced = ("hydra.run.dir=", "ckpt_path=", "resume=")
    saved = [
        o for o in yaml.safe_load(overrides_file.read_text()) or [] if not o.startswith(replaced)
    ]
    wandb_runs = sorted(run_dir.glob("wandb/*run-*"), key=lambda p: p.stat().st_mtime)
    wandb_id = [f"logger.wandb.id={wandb_runs[-1].name.rsplit('-', 1)[1]}"] if wandb_runs else []
    others = [arg for arg in argv[1:] if not arg.startswith("resume=")]
    return [argv[0], *saved, f"hydra.run.dir={run_dir}", "ckpt_path=last", *wandb_id, *others]
