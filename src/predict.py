"""Predict with a checkpoint on new inputs; write a CSV of predictions and print a summary.

Images (a folder of PNG/JPG) are converted, resized and normalised as the datamodule does in
training; points and sequences come as a .npy or .csv file, one sample per row. The data config
is the checkpoint's, as in `src/eval.py`.

python src/predict.py ckpt_path=logs/train/runs/<run> input=my_digits/
python src/predict.py ckpt_path=<run>/checkpoints/last.ckpt input=points.csv output=out.csv
"""

import csv
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from omegaconf import DictConfig

from src.utils.checkpoints import resolve_checkpoint
from src.utils.config import ConfigError, check_group_choices, register_resolvers, validate
from src.utils.serving import atomic_output, compatible_datamodule, use_trained_config

if TYPE_CHECKING:
    from torch import Tensor

    from src.models.base import TaskModule

register_resolvers()

ARRAY_SUFFIXES = (".npy", ".csv")


def predict(cfg: DictConfig) -> Path:
    """Write the predictions of the checkpoint's module on `cfg.input` to `cfg.output`; return
    that path."""
    input_path, output = Path(cfg.input).expanduser(), Path(cfg.output).expanduser()
    check_paths(input_path, output)
    ckpt_path = resolve_checkpoint(cfg.ckpt_path, Path(cfg.paths.output_dir))
    use_trained_config(cfg, ckpt_path, ("data",))
    validate(cfg)
    # Heavy imports come after the config checks, so a bad value fails in about a second.
    from src.models import load_module
    from src.utils.inputs import read_inputs

    module = load_module(ckpt_path).eval()
    datamodule = compatible_datamodule(cfg, module)
    inputs, names = read_inputs(input_path, module.spec)
    outputs = run_model(module, datamodule.preprocess(inputs), cfg.data.batch_size)
    predictions = module.predictions(outputs)
    probabilities = module.probabilities(outputs) if module.spec.task == "classification" else None
    with atomic_output(output) as temporary, open(temporary, "w", newline="") as file:
        csv.writer(file).writerows(prediction_table(names, predictions, probabilities))
    print_prediction_summary(predictions, probabilities is not None, input_path, output)
    return output


def check_paths(path: Path, output: Path) -> None:
    """Raise `ConfigError` unless `path` is a folder or a regular .npy/.csv file (reading a FIFO
    or a socket would block) and `output` no folder."""
    if output.is_dir():
        raise ConfigError(f"output={output} is a folder; give the path of the CSV file to write")
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


def run_model(module: "TaskModule", inputs: "Tensor", batch_size: int) -> "Tensor":
    """The module's outputs on `inputs`, `batch_size` at a time."""
    import torch

    with torch.inference_mode():
        return torch.cat([module(batch) for batch in inputs.split(batch_size)])


def prediction_table(
    names: list[str], predictions: "Tensor", probabilities: "Tensor | None"
) -> list[list]:
    """Header and rows: each input's name, then its class and each class's probability
    (classifiers) or its predicted value, one column per value when there are several."""
    if probabilities is not None:
        header = ["prediction", *(f"prob_{k}" for k in range(probabilities.shape[1]))]
        values = [
            [c, *p] for c, p in zip(predictions.tolist(), probabilities.tolist(), strict=True)
        ]
    else:
        values = predictions.flatten(1).tolist()
        width = len(values[0])
        header = ["prediction"] if width == 1 else [f"prediction_{i}" for i in range(width)]
    return [["input", *header]] + [[n, *v] for n, v in zip(names, values, strict=True)]


def print_prediction_summary(
    predictions: "Tensor", classes: bool, input_path: Path, output: Path
) -> None:
    """How many inputs, how many of each predicted class (or the range of the predicted values),
    and where the CSV is."""
    from src.utils.console import console

    if classes:
        counts = sorted(Counter(predictions.tolist()).items())
        found = "classes (count): " + ", ".join(f"{k} ({n})" for k, n in counts)
    else:
        low, mean, high = predictions.min(), predictions.mean(), predictions.max()
        found = f"values: mean {mean:.4g}, min {low:.4g}, max {high:.4g}"
    out = console()
    out.print(f"Predicted {len(predictions)} inputs from {input_path}; {found}")
    out.print(f"Predictions: {output}")


@hydra.main(version_base="1.3", config_path="../configs", config_name="predict")
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    check_group_choices(sys.argv)
    main()
