"""Steps the entry points share once the config has passed its checks."""

import logging
import shlex
import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, Timer
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf

from src.engine.checkpoint_files import load_checkpoint
from src.engine.checkpointing import AtomicCheckpointIO, MonitorLogged
from src.engine.console import shape_lightning_output
from src.engine.launch import relaunch_ddp_ranks_as_this_job
from src.engine.machine import skip_nvml_probes_without_gpu, thread_count
from src.engine.provenance import git_state
from src.errors import ConfigError, Stopped

log = logging.getLogger(__name__)


def prepare_run(cfg: DictConfig) -> None:
    """Route logs, choose the thread count (`cfg.threads` then says which: the run's loggers
    record it), seed everything, check the devices asked for."""
    shape_lightning_output()
    skip_nvml_probes_without_gpu()
    cfg.threads = thread_count(cfg.get("threads", "auto"))
    torch.set_num_threads(cfg.threads)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    check_devices(cfg.trainer)


def check_devices(trainer: DictConfig) -> None:
    """Raise `ConfigError` when the trainer asks for an accelerator, or more devices of it, than
    this machine has (Lightning would say "No supported gpu backend found!")."""
    accelerator, devices = trainer.get("accelerator", "auto"), trainer.get("devices", 1)
    counts = {
        "gpu": torch.cuda.device_count(),
        "cuda": torch.cuda.device_count(),
        "mps": int(torch.backends.mps.is_available()),
    }
    if accelerator not in counts:
        return
    have, wanted = counts[accelerator], wanted_devices(devices)
    if have >= wanted:
        return
    build = f"torch {torch.__version__}" + (
        f", CUDA {torch.version.cuda}" if torch.version.cuda else ", CPU only"
    )
    raise ConfigError(
        f"trainer.accelerator={accelerator} with trainer.devices={devices}: this machine has "
        f"{have} such device{'s' * (have != 1)} ({build}); use trainer=cpu, or "
        f"trainer.accelerator=auto to take what there is"
    )


def wanted_devices(devices: int | str | Sequence[int] | None) -> int:
    """How many devices `trainer.devices` asks for: a count, a list of indices (`[0, 1]`,
    `"0,1"`), or all there are (`-1`, `"auto"`), which needs one."""
    if isinstance(devices, str):
        devices = devices.strip()
        if "," in devices:
            return len([index for index in devices.split(",") if index.strip()])
        devices = int(devices) if devices.lstrip("-").isdigit() else -1
    if isinstance(devices, int):
        return devices if devices > 0 else 1
    return len(devices or []) or 1


@contextmanager
def stops_to_resume(trainer: L.Trainer, run_dir: Path) -> Iterator[None]:
    """In the block, SIGTERM, or a first Ctrl-C, stops training after a checkpoint (Lightning
    ends the current step, checkpoints and stops: a resume continues exactly) with `Stopped`,
    which says how to resume; a second Ctrl-C interrupts at once."""
    with ctrl_c_stops_like_sigterm() as ctrl_c:
        try:
            yield
        except SystemExit as error:  # Lightning stops on SIGTERM with exit code 0
            if error.code or not trainer.received_sigterm:
                raise
            if trainer.global_rank > 0:  # rank 0 says it and records it, once
                raise SystemExit(1) from error
            trust = [o for o in HydraConfig.get().overrides.task if o.startswith("trusted=")]
            raise Stopped(
                f"{Stopped.PREFIX} {'Ctrl-C' if ctrl_c() else 'SIGTERM'} after checkpointing; "
                f"resume with: python src/train.py {shlex.join([f'resume={run_dir}', *trust])}"
            ) from error


@contextmanager
def ctrl_c_stops_like_sigterm() -> Iterator[Callable[[], bool]]:
    """In the block, a first Ctrl-C stops training as SIGTERM does; a second one interrupts at
    once. Yields a function telling whether Ctrl-C was pressed."""
    pressed = False

    def handle(signum: int, frame: Any) -> None:
        nonlocal pressed
        if pressed or signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, signal.SIG_IGN):
            raise KeyboardInterrupt  # again, or before Lightning handles SIGTERM
        pressed = True
        log.warning("Ctrl-C: stopping after this step (press it again to stop at once)")
        signal.raise_signal(signal.SIGTERM)

    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield lambda: pressed
    finally:
        signal.signal(signal.SIGINT, previous)


def build_trainer(
    cfg: DictConfig,
    datamodule: L.LightningDataModule | None = None,
    record: dict[str, Any] | None = None,
    callbacks: Sequence[L.Callback] = (),
) -> L.Trainer:
    """The Trainer of `cfg.trainer` with every callback and logger configured (with `callbacks`,
    and `MonitorLogged` for a validation `monitor`), writing its checkpoints atomically with
    `record` (what the model and data were built from); `ConfigError` with Lightning's reason
    when it refuses the trainer's settings.

    Under DDP, Lightning gives each rank a shard of a standard `DataLoader` with its distributed
    sampler, unless `datamodule` says its loaders shard themselves (`shards_itself`)."""
    loggers = _instantiate_all(cfg.get("logger"))
    callbacks = [*_instantiate_all(cfg.get("callbacks")), *callbacks]
    if monitor := cfg.get("monitor"):  # listed first: before early stopping's own check
        at_validation = OmegaConf.select(cfg, "callbacks.early_stopping.check_on_train_epoch_end")
        if str(monitor).startswith("val") or at_validation is False:
            callbacks.insert(0, MonitorLogged(monitor))
    if not loggers:  # the LR monitor refuses to start without a logger to write to
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    if cfg.trainer.get("max_time"):  # Lightning's own Timer keeps it (it ignores it beside ours)
        callbacks = [c for c in callbacks if not isinstance(c, Timer)]
    plugins = [*instantiate(cfg.trainer.get("plugins") or []), AtomicCheckpointIO(record)]
    sharding = (
        {"use_distributed_sampler": False} if getattr(datamodule, "shards_itself", False) else {}
    )
    relaunch_ddp_ranks_as_this_job()  # DDP ranks Lightning starts run this job, not the sweep
    try:
        return instantiate(
            cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=plugins, **sharding
        )
    except InstantiationException as error:
        if not isinstance(error.__cause__, MisconfigurationException | ValueError):
            raise
        reason = str(error.__cause__).strip().rstrip(".")
        raise ConfigError(
            f"the trainer settings do not work: {reason}; fix them on the command line "
            f"(trainer.<key>=...) or choose another trainer=<option>"
        ) from None


def log_hyperparameters(
    trainer: L.Trainer, cfg: DictConfig, metrics: dict[str, float] | None = None
) -> None:
    """Send the resolved config and the git state to every logger; with the final `metrics`,
    also fill TensorBoard's hparams view (as `hparams/<metric>`)."""
    params = OmegaConf.to_container(cfg, resolve=True) | git_state()
    for logger in trainer.loggers:
        if metrics is None:
            logger.log_hyperparams(params)
        elif isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(params, {f"hparams/{k}": v for k, v in metrics.items()})


def finish_wandb(trainer: L.Trainer, failed: bool) -> None:
    """End this job's W&B run, marked failed or finished, so the next job of a sweep starts its
    own and no run is left open."""
    if any(isinstance(logger, WandbLogger) for logger in trainer.loggers):
        import wandb

        wandb.finish(exit_code=int(failed))


def best_result(trainer: L.Trainer, monitor: str | None) -> tuple[dict[str, float], str]:
    """The run's result and the best checkpoint's path: the best checkpoint's value of `monitor`
    as `best/<monitor>`, with the epoch and step it was saved at (`best/epoch`, `best/step`),
    which the test then evaluates; without a checkpoint kept by `monitor`, its last value and
    step, the current weights' (and any checkpoint callback's best path). No result when
    `monitor` was never logged."""
    kept = [c for c in trainer.checkpoint_callbacks if getattr(c, "best_model_path", "")]
    for callback in kept:
        if callback.monitor == monitor and callback.best_model_score is not None:
            saved = load_checkpoint(callback.best_model_path, mmap=True)
            result = {f"best/{monitor}": float(callback.best_model_score)}
            result |= {"best/epoch": saved["epoch"], "best/step": saved["global_step"]}
            return result, callback.best_model_path
    best = kept[0].best_model_path if kept else ""
    if monitor not in trainer.callback_metrics:
        return {}, best
    value = float(trainer.callback_metrics[monitor])
    return {f"best/{monitor}": value, "best/step": trainer.global_step}, best


def restore_checkpoint_callbacks(trainer: L.Trainer, ckpt_path: str) -> None:
    """Give the trainer's checkpoint callbacks their state saved in `ckpt_path` (their best
    checkpoint and score), as fitting from it would."""
    states = load_checkpoint(ckpt_path, mmap=True).get("callbacks", {})
    for callback in trainer.checkpoint_callbacks:
        if (state := states.get(callback.state_key)) is not None:
            callback.load_state_dict(state)


def logged_metrics(trainer: L.Trainer, stage: str) -> dict[str, float]:
    """The trainer's latest metrics as plain floats, and `time/<stage>_s` when a `Timer` ran.

    Read right after the stage: restoring a checkpoint later (to test it) also restores the
    timer's training clock.
    """
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    for timer in (c for c in trainer.callbacks if isinstance(c, Timer)):
        metrics[f"time/{stage}_s"] = timer.time_elapsed(stage)
    return metrics


def _instantiate_all(group: DictConfig | None) -> list:
    """Instantiate each `_target_` entry of a `{name: config}` group."""
    return [instantiate(node) for node in (group or {}).values() if node and "_target_" in node]
