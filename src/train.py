"""Train a model on a datamodule, then test its best checkpoint.

python src/train.py                              # points + MLP, seconds on a CPU
python src/train.py model=logreg model/optimizer=sgd
python src/train.py resume=logs/train/runs/<run>  # continue a run where it stopped
python src/train.py rerun=logs/train/runs/<run>   # run its saved config again, in a new run dir
"""

import logging
import math
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig, OmegaConf

from src.engine.arguments import expand_run_arguments
from src.engine.checkpoints import (
    Resume,
    continued_checkpoint,
    load_step,
    nothing_left_to_train,
    plan_resume,
)
from src.engine.config import (
    check_given,
    check_group_choices,
    check_validation,
    fresh_targets,
    validate,
)
from src.engine.machine import skip_collection_at_exit
from src.engine.resolvers import register_resolvers
from src.engine.sweeps import ERROR_FILE, METRICS_FILE, read_metrics, write_json
from src.errors import ConfigError, DivergedError, Stopped

if TYPE_CHECKING:
    import lightning as L

register_resolvers()
log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit, test the best checkpoint, log the final metrics with the config, save them as
    `metrics.json` in the run directory and print them last; return them.

    With `ckpt_path`, training continues from the checkpoint with the model and data configs it
    carries (settings it would overrule may not change: `check_resume_settings`). Every
    checkpoint records the model and data configs and the data's spec, to be rebuilt from.
    """
    check_given(cfg)
    validate(cfg)
    run_dir = Path(cfg.paths.output_dir)
    resume = plan_resume(cfg, continued_checkpoint(cfg, run_dir), run_dir)
    check_validation(cfg)
    # Heavy imports come after the config checks, so a bad value fails in about a second.
    from lightning.pytorch.utilities import rank_zero_only

    from src.engine.checkpoints import continue_logs
    from src.engine.console import print_final_metrics, show_run
    from src.engine.provenance import note_provenance
    from src.engine.trainer import (
        build_trainer,
        finish_wandb,
        log_hyperparameters,
        prepare_run,
        stops_to_resume,
    )

    prepare_run(cfg)
    rank_zero_only(note_provenance)(run_dir, threads=cfg.threads)
    model, datamodule, record = build_model_and_data(cfg)
    if resume:
        continue_logs(cfg, resume.ckpt_path)
    rank_zero_only(show_run)(cfg, "Train", resume.trained if resume else [])
    trainer = build_trainer(cfg, datamodule, record)
    log_hyperparameters(trainer, cfg)
    try:
        with stops_to_resume(trainer, run_dir):
            metrics, best = fit_and_test(cfg, trainer, model, datamodule, resume)
        check_result(cfg, metrics)
    except BaseException:
        finish_wandb(trainer, failed=True)
        raise
    log_hyperparameters(trainer, cfg, metrics)
    finish_wandb(trainer, failed=False)  # before the final table: W&B prints its own summary
    rank_zero_only(write_json)(run_dir / METRICS_FILE, metrics)
    (run_dir / ERROR_FILE).unlink(missing_ok=True)  # an earlier attempt's, now resumed
    rank_zero_only(print_final_metrics)(metrics, best or "none saved", "Best checkpoint")
    return metrics


def build_model_and_data(
    cfg: DictConfig,
) -> tuple["L.LightningModule", "L.LightningDataModule", dict[str, Any]]:
    """The datamodule of `cfg.data`, the model of `cfg.model` built for its data (a pair that
    cannot work is refused in one sentence), and the record each checkpoint keeps of them."""
    from src.data.spec import spec_of
    from src.engine.building import build_model
    from src.engine.compatibility import check_compatible
    from src.engine.slots import DATAMODULE, build

    datamodule = build(cfg.data, DATAMODULE, cfg.trusted)
    spec = spec_of(datamodule)
    check_compatible(cfg, spec)
    model_config = OmegaConf.to_container(cfg.model, resolve=True)
    model = build_model(model_config, spec, cfg.trusted)
    data_config = OmegaConf.to_container(cfg.data, resolve=True)
    record = {"model": model_config, "data": data_config, "spec": spec.to_dict()}
    return model, datamodule, record | {"threads": cfg.threads}


def fit_and_test(
    cfg: DictConfig,
    trainer: "L.Trainer",
    model: "L.LightningModule",
    datamodule: "L.LightningDataModule",
    resume: Resume | None,
) -> tuple[dict[str, float], str]:
    """Fit (from `resume`'s checkpoint, if any; a continued job whose training had ended takes
    its checkpoint callbacks' state from it), then test the best checkpoint; return the metrics,
    the run's result among them (`best_result`), and the best checkpoint's path (empty when none
    was saved)."""
    from lightning.pytorch.utilities import rank_zero_info

    from src.engine.checkpoint_files import forget_checkpoints
    from src.engine.trainer import best_result, logged_metrics, restore_checkpoint_callbacks

    ckpt_path = resume.ckpt_path if resume else None
    fit = resume.fit if resume else cfg.get("train")
    if fit:
        start = load_step(ckpt_path) if ckpt_path else None
        forget_checkpoints()
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        if trainer.global_step == start:  # say, the checkpoint's timer had run out
            raise nothing_left_to_train(cfg, trainer.current_epoch, trainer.global_step)
    elif ckpt_path and cfg.get("train"):  # a continued job whose training had ended
        restore_checkpoint_callbacks(trainer, ckpt_path)
    result, best = best_result(trainer, cfg.get("monitor"))
    metrics = (logged_metrics(trainer, "train") if fit else {}) | result
    if cfg.get("test"):
        if not best:
            rank_zero_info("No best checkpoint was saved: testing the current weights.")
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        metrics |= logged_metrics(trainer, "test")
    return metrics, best


def check_result(cfg: DictConfig, metrics: dict[str, float]) -> None:
    """Raise when the run has no result to be judged by: `monitor` was never logged
    (`ConfigError`), or its best value is NaN or infinite (`DivergedError`: every batch skipped,
    diverged weights)."""
    if not (name := cfg.get("monitor")) or not cfg.get("train"):
        return
    if f"best/{name}" not in metrics:
        raise ConfigError(
            f"monitor={name} was never logged, so the run has no result: the module logs no such "
            f"metric, or no validation batch ran; give monitor=<a metric it logs>, or validation "
            f"data"
        )
    if not math.isfinite(value := metrics[f"best/{name}"]):
        raise DivergedError(
            f"{name} has no finite value (best: {value}): the run has no result; lower "
            f"model.optimizer.lr, or check the data for NaN or infinite values"
        )


def finished_metrics(run_dir: Path) -> dict[str, float] | None:
    """The metrics of the run that finished in `run_dir` (a continued sweep's job keeps them);
    None when it has not, or they cannot be read (the job then goes on from its checkpoints)."""
    if not (run_dir / METRICS_FILE).is_file():
        return None
    try:
        metrics = read_metrics(run_dir / METRICS_FILE)
    except (OSError, ValueError) as error:
        log.warning(f"{error}: the job goes on from its checkpoints")
        return None
    log.info(f"This job finished earlier; its result is kept: {run_dir / METRICS_FILE}")
    return metrics


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the run's result for sweepers, the best value of the monitored
    metric (`best/<monitor>`).

    A failing job writes its traceback to `error.txt` in its run directory, for the sweep
    summary, and raises: Hydra's launchers run a sweep's other jobs, then exit non-zero. A
    stopped job writes how to resume it there.
    """
    if cfg.get("continue_run") and (kept := finished_metrics(Path(cfg.paths.output_dir))):
        return kept.get(f"best/{cfg.monitor}") if cfg.get("monitor") else None
    try:
        metrics = train(cfg)
    except Exception:
        (Path(cfg.paths.output_dir) / ERROR_FILE).write_text(traceback.format_exc())
        raise
    except Stopped as stop:
        (Path(cfg.paths.output_dir) / ERROR_FILE).write_text(f"{stop}\n")
        raise
    return metrics.get(f"best/{cfg.monitor}") if cfg.get("monitor") else None


if __name__ == "__main__":
    skip_collection_at_exit()
    try:  # resume=<run dir>: continue that run where it stopped; rerun=<run dir>: run it again
        sys.argv = expand_run_arguments(sys.argv)
    except ConfigError as error:
        raise SystemExit(str(error)) from None
    sys.argv = fresh_targets(sys.argv)
    check_group_choices(sys.argv)
    main()
