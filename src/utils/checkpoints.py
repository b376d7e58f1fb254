"""Finding the checkpoint a run resumes from or evaluates."""

from pathlib import Path

from src.utils.config import ConfigError


def resolve_checkpoint(ckpt_path: str | None, run_dir: Path) -> str | None:
    """The checkpoint file meant by `ckpt_path`, or None to start from scratch.

    `last` means this run directory's `checkpoints/last.ckpt` (point `hydra.run.dir` at an earlier
    run to continue it in place); a run directory means its `checkpoints/last.ckpt`; anything else
    is a checkpoint file. A path that leads to no file is an error, never a silent fresh start.
    """
    if ckpt_path is None:
        return None
    path = run_dir if ckpt_path == "last" else Path(ckpt_path).expanduser()
    if path.is_dir():
        path = path / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise ConfigError(
            f"ckpt_path={ckpt_path}: no checkpoint at {path}; give a .ckpt file, a run directory "
            f"with checkpoints/last.ckpt, or ckpt_path=last with hydra.run.dir=<that run directory>"
        )
    return str(path.resolve())
