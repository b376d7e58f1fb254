"""Predict with a checkpoint on new inputs; write a CSV of predictions and print a summary.

Images (a folder of PNG/JPG) are converted, resized and normalised as the datamodule does in
training; points and sequences come as a .npy or .csv file, one sample per row. The data config
is the checkpoint's, as in `src/eval.py`.

python src/predict.py ckpt_path=logs/train/runs/<run> input=my_digits/
python src/predict.py ckpt_path=<run>/checkpoints/last.ckpt input=points.csv output=out.csv
"""

import sys
from collections import Counter
from pathlib import Path

import hydra
from omegaconf import DictConfig

from src.engine.checkpoints import resolve_checkpoint
from src.engine.config import check_given, check_group_choices, fresh_targets
from src.engine.machine import skip_collection_at_exit
from src.engine.resolvers import register_resolvers
from src.engine.serving import check_output, trained_module, use_trained_config
from src.errors import ConfigError

register_resolvers()

ARRAY_SUFFIXES = (".npy", ".csv")


def predict(cfg: DictConfig) -> Path:
    """Write the predictions of the checkpoint's module on `cfg.input` to `cfg.output`; return
    that path. Lightning's `predict` runs the module, on the trainer's device and precision."""
    check_given(cfg)
    input_path, output = Path(cfg.input).expanduser(), Path(cfg.output).expanduser()
    check_input(input_path)
    ckpt_path = resolve_checkpoint(cfg.ckpt_path, Path(cfg.paths.output_dir))
    what = "an earlier table of predictions (first line: input,prediction...)"
    check_output(output, [input_path, Path(ckpt_path)], is_predictions, what, cfg.overwrite)
    use_trained_config(cfg, ckpt_path, ("data",))
    # Heavy imports come after the config checks, so a bad value fails in about a second.
    from torch.utils.data import DataLoader

    from src.engine.inputs import model_inputs, read_inputs
    from src.engine.predictions import PredictionWriter
    from src.engine.trainer import build_trainer

    module, spec, datamodule = trained_module(cfg, ckpt_path, "forward", "predict")
    inputs, names = read_inputs(input_path, spec)
    batches = DataLoader(model_inputs(inputs, spec, datamodule), cfg.batch_size)
    writer = PredictionWriter(output, names)
    trainer = build_trainer(cfg, callbacks=[writer])
    trainer.predict(module, dataloaders=batches, return_predictions=False)
    print_prediction_summary(writer.header, writer.rows, input_path, output)
    return output


def check_input(path: Path) -> None:
    """Raise `ConfigError` unless `path` is a folder or a regular .npy/.csv file (reading a FIFO
    or a socket would block)."""
    if not path.exists():
        raise ConfigError(
            f"input={path}: no such file or folder; give a folder of images or a .npy/.csv file"
        )
    if not (path.is_dir() or path.is_file()):
        raise ConfigError(
            f"input={path} is not a regular file; give a folder of images or a .npy/.csv file"
        )
    if path.is_file() and path.suffix.lower() not in ARRAY_SUFFIXES:
        raise ConfigError(
            f"input={path}: {path.suffix or 'no suffix'} files are not read; give a folder of "
            f"PNG/JPG images or a .npy/.csv file"
        )


def is_predictions(path: Path) -> bool:
    """Whether `path` is a table of predictions, as this script writes them."""
    try:
        with open(path, encoding="utf-8") as file:
            return file.readline().startswith("input,prediction")
    except (OSError, UnicodeDecodeError):
        return False


def print_prediction_summary(
    header: list[str], rows: list[list], input_path: Path, output: Path
) -> None:
    """How many inputs, how many of each predicted class (or the range of the predicted values),
    and where the CSV is."""
    from src.engine.console import console

    if any(name.startswith("prob_") for name in header):
        counts = sorted(Counter(row[0] for row in rows).items())
        found = "classes (count): " + ", ".join(f"{k} ({n})" for k, n in counts)
    else:
        values = [value for row in rows for value in row]
        low, mean, high = min(values), sum(values) / len(values), max(values)
        found = f"values: mean {mean:.4g}, min {low:.4g}, max {high:.4g}"
    out = console()
    out.print(f"Predicted {len(rows)} inputs from {input_path}; {found}", highlight=False)
    out.print(f"Predictions: {output}", highlight=False)


@hydra.main(version_base="1.3", config_path="../configs", config_name="predict")
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    skip_collection_at_exit()
    sys.argv = fresh_targets(sys.argv)
    check_group_choices(sys.argv)
    main()
