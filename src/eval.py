"""Evaluate a checkpoint on a datamodule's test split and print the metrics.

The data config is the one the checkpoint was trained with (checkpoints carry it), with the
command line's `data.*` overrides on top; `data=<option>` picks other data.

python src/eval.py ckpt_path=logs/train/runs/<run>/checkpoints/epoch_009.ckpt
python src/eval.py ckpt_path=logs/train/runs/<run>        # that run's last.ckpt
python src/eval.py ckpt_path=model.ckpt data=mnist data.data_dir=/datasets
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from src.engine.checkpoints import resolve_checkpoint
from src.engine.config import check_given, check_group_choices, fresh_targets
from src.engine.machine import skip_collection_at_exit
from src.engine.resolvers import register_resolvers
from src.engine.serving import trained_module, use_trained_config

register_resolvers()


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Test the checkpoint's module on `cfg.data`; return the test metrics."""
    check_given(cfg)
    ckpt_path = resolve_checkpoint(cfg.ckpt_path, Path(cfg.paths.output_dir))
    trained = use_trained_config(cfg, ckpt_path, ("data",))
    # Heavy imports come after the config checks, so a bad value fails in about a second.
    from lightning.pytorch.utilities import rank_zero_only

    from src.engine.console import print_final_metrics, show_run
    from src.engine.trainer import build_trainer, logged_metrics

    module, _, datamodule = trained_module(cfg, ckpt_path, "test_step", "eval")
    rank_zero_only(show_run)(cfg, "Evaluate", trained)
    trainer = build_trainer(cfg, datamodule)
    trainer.test(module, datamodule=datamodule)
    metrics = logged_metrics(trainer, "test")
    rank_zero_only(print_final_metrics)(metrics, ckpt_path, "Checkpoint evaluated")
    return metrics


@hydra.main(version_base="1.3", config_path="../configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    skip_collection_at_exit()
    sys.argv = fresh_targets(sys.argv)
    check_group_choices(sys.argv)
    main()
