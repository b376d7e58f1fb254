"""Finding the checkpoint a run resumes from or evaluates, and loading checkpoints safely."""

import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from src.engine.checkpoint_files import (
    RECORD,
    CheckpointError,
    built_from,
    forget_checkpoints,
    load_checkpoint,
)
from src.engine.serving import use_trained_config
from src.engine.slots import RUNTIME_OPTIONS
from src.errors import ConfigError

log = logging.getLogger(__name__)

# what a run directory resumes from: the newest of these that loads
RESUMABLE = ("last.ckpt", "on_exception.ckpt")
# data settings that say how batches are served, not which: what a resumed run may change
SERVING_KEYS = (
    "loader",
    "num_workers",
    "pin_memory",
    "persistent_workers",
    "on_device",
    "data_dir",
    "root",
    "download",
)


def continued_checkpoint(cfg: DictConfig, run_dir: Path) -> str | None:
    """`last` when this job continues the run in its directory, which holds a checkpoint to go
    on from: a requeued SLURM job (preempted, or out of time), or a job of a continued sweep
    (`continue_run`, set by `-m resume=<sweep dir>`); else `cfg.ckpt_path`."""
    requeued = int(os.environ.get("SLURM_RESTART_COUNT", "0"))
    if (requeued or cfg.get("continue_run")) and resumable_checkpoints(run_dir):
        return "last"
    return cfg.get("ckpt_path")


def resolve_checkpoint(ckpt_path: str | None, run_dir: Path) -> str | None:
    """The checkpoint file meant by `ckpt_path`, checked to load safely; None to start afresh.

    `last` means this run directory's newest checkpoint that loads (of `checkpoints/last.ckpt`,
    `checkpoints/on_exception.ckpt` and Lightning's `hpc_ckpt_<n>.ckpt`; point `hydra.run.dir`
    at an earlier run to continue it in place); a run directory means the same there; anything
    else is a checkpoint file. A path that leads to no good file is an error, never a silent
    fresh start.
    """
    if ckpt_path is None:
        return None
    forget_checkpoints()  # a command reads its checkpoint afresh
    path = run_dir if ckpt_path == "last" else Path(ckpt_path).expanduser()
    if path.is_dir():
        return str(newest_loadable(path, f"ckpt_path={ckpt_path}").resolve())
    if not path.is_file():
        raise ConfigError(
            f"ckpt_path={ckpt_path}: no checkpoint at {path}; give a .ckpt file, a run directory "
            f"with checkpoints/last.ckpt, or ckpt_path=last with hydra.run.dir=<that run directory>"
        )
    check_checkpoint(path)
    return str(path.resolve())


def resumable_checkpoints(run_dir: Path) -> list[Path]:
    """The run's checkpoints to resume from, newest first."""
    paths = [run_dir / "checkpoints" / name for name in RESUMABLE]
    paths += run_dir.glob("hpc_ckpt_*.ckpt")  # Lightning's, on SLURM's requeue signal
    return sorted((p for p in paths if p.is_file()), key=lambda p: p.stat().st_mtime, reverse=True)


def newest_loadable(run_dir: Path, asked: str) -> Path:
    """The newest of the run's `resumable_checkpoints` that loads, saying in one line which it
    skipped and why; `ConfigError` (naming `asked`, the argument) when none does."""
    failures = []
    for path in resumable_checkpoints(run_dir):
        try:
            check_checkpoint(path)
        except ConfigError as error:
            failures.append(f"{path.name}: {error.reason}")
            log.warning(f"Skipped {path}: {error.reason}")
            continue
        return path
    found = f" ({'; '.join(failures)})" if failures else ""
    raise ConfigError(
        f"{asked}: no checkpoint in {run_dir} loads{found}; give a run directory with "
        f"checkpoints/last.ckpt, or a .ckpt file"
    )


def load_step(ckpt_path: str | Path) -> int:
    """The training step a checkpoint was saved at."""
    return load_checkpoint(ckpt_path, mmap=True)["global_step"]


def check_left_to_train(cfg: DictConfig, ckpt_path: str) -> None:
    """Raise `ConfigError` when the checkpoint has done all the training this run allows:
    early stopping ended it (restored, it would stop again after an epoch), it has trained for
    all of `trainer.max_time`, or it has reached `trainer.max_epochs` or `trainer.max_steps`
    (past them, Lightning refuses it with a traceback)."""
    checkpoint = load_checkpoint(ckpt_path, mmap=True)
    stopped_at = [
        state.get("stopped_epoch", 0)
        for name, state in checkpoint.get("callbacks", {}).items()
        if name.startswith("EarlyStopping")
    ]
    if OmegaConf.select(cfg, "callbacks.early_stopping") and any(stopped_at):
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path}: nothing left to train, early stopping ended that run "
            f"at epoch {max(stopped_at)}; add callbacks.early_stopping=null to train on"
        )
    elapsed = checkpoint.get("callbacks", {}).get("Timer", {}).get("time_elapsed", {})
    budget = time_budget(cfg.trainer.get("max_time"))
    if budget is not None and elapsed.get("train", 0) >= budget.total_seconds():
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path}: nothing left to train, the run has trained for "
            f"{timedelta(seconds=round(elapsed['train']))}, all of "
            f"trainer.max_time={cfg.trainer.max_time}; raise it to train on"
        )
    # epochs whose training ended, as Lightning counts them when it restores the checkpoint
    progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {})
    epochs = progress.get("current", {}).get("processed", checkpoint["epoch"])
    steps = checkpoint["global_step"]
    limits = [(cfg.trainer.get("max_epochs"), epochs), (cfg.trainer.get("max_steps"), steps)]
    if any(limit is not None and 0 <= limit <= done for limit, done in limits):  # -1: no limit
        raise nothing_left_to_train(cfg, epochs, steps)


def time_budget(max_time: str | dict | None) -> timedelta | None:
    """`trainer.max_time` as Lightning reads it ("DD:HH:MM:SS", or a dict of days, hours,
    minutes and seconds); None for none, or one Lightning refuses (it says why)."""
    units = ("days", "hours", "minutes", "seconds")
    try:
        if isinstance(max_time, str):
            return timedelta(**dict(zip(units, map(int, max_time.split(":")), strict=True)))
        return timedelta(**max_time) if max_time else None
    except (TypeError, ValueError):
        return None


def nothing_left_to_train(cfg: DictConfig, epochs: int, steps: int) -> ConfigError:
    return ConfigError(
        f"ckpt_path={cfg.ckpt_path}: nothing left to train, the checkpoint has done {epochs} "
        f"epochs ({steps} steps), as many as trainer.max_epochs={cfg.trainer.max_epochs} and "
        f"trainer.max_steps={cfg.trainer.max_steps} allow; raise them to train on"
    )


def check_checkpoint(path: Path) -> None:
    """Raise `ConfigError` unless `path` loads safely and its weights are all finite."""
    import torch

    checkpoint = load_checkpoint(path, mmap=True)  # mapped, not copied: seconds for big models
    weights = checkpoint.get("state_dict", {})
    if any(t.is_floating_point() and not torch.isfinite(t).all() for t in weights.values()):
        raise CheckpointError(path, "its weights hold NaN or infinite values")


def check_resume_settings(cfg: DictConfig, ckpt_path: str) -> None:
    """Raise `ConfigError` when this run's model or data settings differ from those the
    checkpoint was trained with: resuming restores its optimizer and scheduler states, the
    loader's position and the random states over them (or cannot load its weights into another
    network), so the new values would be ignored or break the run; `seed` is compared with the
    data's (its random states come from the checkpoint). The model's runtime options, how batches
    are served (`SERVING_KEYS`) and the trainer's settings may change."""
    record = built_from(load_checkpoint(ckpt_path, mmap=True), f"checkpoint {ckpt_path}")
    model = OmegaConf.to_container(cfg.model, resolve=True)
    pairs = {
        f"model.{key}": (model.get(key), record["model"].get(key))
        for key in sorted(model.keys() | record["model"].keys())
        if key not in RUNTIME_OPTIONS
    }
    if saved_data := record.get("data"):
        data = OmegaConf.to_container(cfg.data, resolve=True), saved_data
        pairs["data"] = tuple({k: v for k, v in d.items() if k not in SERVING_KEYS} for d in data)
        pairs["seed"] = cfg.get("seed"), saved_data.get("seed", cfg.get("seed"))
    for key, (value, old) in pairs.items():
        if difference := _first_difference(key, _plain(value), _plain(old)):
            name, value, old = difference
            raise ConfigError(
                f"{name}={value} differs from {old}, the value checkpoint {ckpt_path} was "
                f"trained with, which resuming would restore or fail on; drop it to continue the "
                f"run as it was, or start a new run without ckpt_path"
            )


def continue_logs(cfg: DictConfig, ckpt_path: str) -> None:
    """When the run resumes in its own directory, have its loggers continue the history there:
    each logger config with a `purge_step` gets the checkpoint's step, so what the interrupted
    run logged after its checkpoint is dropped (CSV) or hidden (TensorBoard), and W&B continues
    the run's own W&B run (its newest in `wandb/`) unless `logger.wandb.id` is given."""
    run_dir = Path(cfg.paths.output_dir).resolve()
    if not Path(ckpt_path).is_relative_to(run_dir):
        return
    step = load_step(ckpt_path)
    for logger in (cfg.get("logger") or {}).values():
        if logger and "purge_step" in logger:
            logger.purge_step = step
    wandb_runs = sorted(run_dir.glob("wandb/*run-*"), key=lambda p: p.stat().st_mtime)
    if OmegaConf.select(cfg, "logger.wandb") and cfg.logger.wandb.get("id") is None and wandb_runs:
        cfg.logger.wandb.id = wandb_runs[-1].name.rpartition("-")[2]  # <kind>-run-<time>-<id>


def _first_difference(key: str, value: Any, old: Any) -> tuple[str, Any, Any] | None:
    """The first dotted key under `key` where `value` and `old` differ, with both values."""
    if isinstance(value, dict) and isinstance(old, dict):
        for name in sorted(value.keys() | old.keys()):
            found = _first_difference(f"{key}.{name}", value.get(name), old.get(name))
            if found:
                return found
        return None
    return None if value == old else (key, value, old)


def _plain(value: Any) -> Any:
    """`value` with tuples as lists, so saved and configured sequences compare equal."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Resume:
    """Where a run goes on from: the checkpoint, the config sections its record gave
    (`trained`), and whether training is left (`fit`: not for a continued job whose training had
    ended, which is then tested)."""

    ckpt_path: str
    trained: list[str]
    fit: bool


def plan_resume(cfg: DictConfig, asked: str | None, run_dir: Path) -> Resume | None:
    """The resume `asked` for (`ckpt_path`: a file, a run directory, `last`), decided and checked
    in one place; None for a fresh start. `cfg` takes the checkpoint's model and data configs
    with the command line's overrides on top (`use_trained_config`) and, for `threads=auto`, the
    thread count it was trained with; then it is checked against the checkpoint
    (`check_resume_settings`, `check_left_to_train`)."""
    ckpt_path = resolve_checkpoint(asked, run_dir)
    if ckpt_path is None:
        return None
    trained = use_trained_config(cfg, ckpt_path, ("model", "data"))
    check_resume_settings(cfg, ckpt_path)
    if cfg.get("threads") == "auto":
        record = load_checkpoint(ckpt_path, mmap=True).get(RECORD) or {}
        cfg.threads = record.get("threads", "auto")
    return Resume(ckpt_path, trained, bool(cfg.get("train")) and left_to_train(cfg, ckpt_path))


def left_to_train(cfg: DictConfig, ckpt_path: str) -> bool:
    """Whether the checkpoint has training left (else `check_left_to_train`'s `ConfigError`); a
    continued job (`continue_run`) whose training had ended goes on to its test."""
    try:
        check_left_to_train(cfg, ckpt_path)
    except ConfigError:
        if not cfg.get("continue_run"):
            raise
        log.info("This job's training had ended: testing its best checkpoint")
        return False
    return True
