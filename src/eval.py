"""Evaluate a checkpoint on a datamodule's test split and print the metrics.

python src/eval.py ckpt_path=logs/train/runs/<run>/checkpoints/epoch_009.ckpt
python src/eval.py ckpt_path=logs/train/runs/<run>        # that run's last.ckpt
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from src.utils.checkpoints import resolve_checkpoint
from src.utils.config import ConfigError, register_resolvers, validate

register_resolvers()


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Test the checkpoint's module on `cfg.data`; return the test metrics."""
    validate(cfg)
    ckpt_path = resolve_checkpoint(cfg.ckpt_path, Path(cfg.paths.output_dir))
    # Heavy imports come after the config checks, so a bad value fails in about a second.
    from hydra.utils import instantiate
    from lightning.pytorch.utilities import rank_zero_only

    from src.models import load_module
    from src.utils.console import print_summary
    from src.utils.run import build_trainer, logged_metrics, prepare_run

    prepare_run(cfg)
    module = load_module(ckpt_path)
    datamodule = instantiate(cfg.data)
    if datamodule.spec != module.spec:
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path} holds a model for {module.spec.describe()}, but the chosen "
            f"data gives {datamodule.spec.describe()}; choose the data it was trained on"
        )
    trainer = build_trainer(cfg)
    trainer.test(module, datamodule=datamodule)
    metrics = logged_metrics(trainer, "test")
    rank_zero_only(print_summary)(metrics, ckpt_path)
    return metrics


@hydra.main(version_base="1.3", config_path="../configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
