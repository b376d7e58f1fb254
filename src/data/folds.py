"""k-fold cross-validation: the data that trains and validates, cut into `folds` parts, one of
which validates; the test split stays as it is."""

import torch
from torch import Tensor

from src.errors import ConfigError


def check_folds(folds: int | None, fold: int) -> None:
    """Raise `ConfigError` unless `fold` names one of `folds` parts (or no folds are asked)."""
    if folds is None and fold == 0:
        return
    if folds is None or folds < 2 or not 0 <= fold < folds:
        given = "null" if folds is None else folds
        raise ConfigError(
            f"data.folds={given} with data.fold={fold}: give data.folds=<k> (2 or more) and "
            f"data.fold from 0 to k - 1, or data.folds=null for the usual validation split"
        )


def fold_split(pool: Tensor, folds: int, fold: int) -> dict[str, Tensor]:
    """`pool`, the shuffled indices of the samples that train and validate, as `train` and `val`
    indices: cut into `folds` near-equal parts, part `fold` validates, the others train."""
    parts = list(pool.tensor_split(folds))
    if not len(parts[-1]):
        raise ConfigError(f"data.folds={folds} is more than the {len(pool)} samples to cut")
    return {"train": torch.cat(parts[:fold] + parts[fold + 1 :]), "val": parts[fold]}
