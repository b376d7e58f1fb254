"""Regression and sequences: the generated data sets, the learned line, the pictures."""

import math

import pytest
import torch
from PIL import Image

from src.data.linear import LinearDataModule
from src.data.random_regression import RandomDataModule
from src.data.sine import SineDataModule
from src.data.spec import DataSpec
from src.engine.loading import load_module
from src.errors import ConfigError
from src.train import train
from tests.conftest import TRUSTED

QUIET = ("extras.print_config=false", "callbacks.rich_progress_bar=null")


def generated(datamodule):
    datamodule.setup()
    return datamodule


def test_sine_reads_sin_and_targets_cos_of_one_phase() -> None:
    datamodule = generated(SineDataModule(num_samples=100, seq_len=20, freq_range=(2.0, 2.0)))
    assert datamodule.spec == DataSpec("regression", "sequence", (20, 1), 1)
    inputs, targets = datamodule.splits["train"]
    assert inputs.shape == targets.shape == (80, 20, 1)
    assert torch.allclose(inputs**2 + targets**2, torch.ones_like(inputs), atol=1e-5)
    t = torch.atan2(inputs, targets).squeeze(-1)
    step = torch.remainder(t[:, 1] - t[:, 0], 2 * math.pi)
    assert torch.allclose(step, torch.full_like(step, 2.0 * math.pi / 19), atol=1e-4)


def test_linear_points_follow_their_line() -> None:
    datamodule = generated(LinearDataModule(num_samples=2000, slope=-3.0, intercept=1.5, noise=0.1))
    x, y = (torch.cat(parts) for parts in zip(*datamodule.splits.values(), strict=True))
    design = torch.cat([x, torch.ones_like(x)], dim=1)
    slope, intercept = torch.linalg.lstsq(design, y).solution.flatten().tolist()
    assert slope == pytest.approx(-3.0, abs=0.02) and intercept == pytest.approx(1.5, abs=0.02)
    assert (x.min(), x.max()) >= (-1.0, -1.0) and x.max() <= 1.0


def test_random_data_has_the_seed_shapes() -> None:
    datamodule = generated(RandomDataModule())
    assert datamodule.spec == DataSpec("regression", "vector", (1000,), 10)
    assert sum(len(x) for x, _ in datamodule.splits.values()) == 64


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SineDataModule(seq_len=1), "data.seq_len must be 2 or more"),
        (lambda: SineDataModule(freq_range=(2, 1)), "data.freq_range must be"),
        (lambda: LinearDataModule(noise=-1), "data.noise must be non-negative"),
        (lambda: LinearDataModule(x_range=(1, 1)), "data.x_range must be"),
    ],
)
def test_bad_values_name_their_key(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_linear_regression_learns_slope_and_intercept(make_cfg, tmp_path) -> None:
    train(make_cfg("experiment=linear_regression", *QUIET))
    (best,) = (tmp_path / "checkpoints").glob("epoch_*.ckpt")
    linear = load_module(best, TRUSTED)[0].net.linear
    assert linear.weight.item() == pytest.approx(2.0, abs=0.1)
    assert linear.bias.item() == pytest.approx(5.0, abs=0.3)
    with Image.open(tmp_path / "figures" / "test_fitted_line.png") as image:
        image.verify()


def test_sine_run_saves_its_curves(make_cfg, tmp_path) -> None:
    metrics = train(
        make_cfg("experiment=sine_rnn", "debug=fdr", "callbacks.figures.every_n_epochs=1", *QUIET)
    )
    assert {"test/mse", "test/mae", "test/r2"} <= metrics.keys()
    for name in ("val_sequences_epoch000", "test_sequences"):
        with Image.open(tmp_path / "figures" / f"{name}.png") as image:
            image.verify()


@pytest.mark.slow
def test_rnn_learns_sine_to_cosine(make_cfg) -> None:
    metrics = train(make_cfg("experiment=sine_rnn", "logger=none", *QUIET))
    assert metrics["val/mse"] < 0.01


def test_rnn_on_images_fails_at_start_up(make_cfg) -> None:
    expected = r"model=rnn cannot train on data=mnist .*mnist: cnn, lstm, mlp, resnet18, vgg;"
    with pytest.raises(ConfigError, match=expected):
        train(make_cfg("model=rnn", "data=mnist", *QUIET))
