"""Evaluation: the training run's data config is found and overridden; other data is checked."""

import shutil
from pathlib import Path

import pytest
import torch

from src.engine.config import PROJECT_ROOT
from src.engine.serving import use_trained_config
from src.errors import ConfigError
from src.eval import evaluate
from tests.conftest import mnist_data, read_metrics, run_script, trained_run, write_mnist


@pytest.fixture(scope="module")
def points_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run on points of another size than the eval config's default: data taken from the
    checkpoint shows it."""
    return trained_run(tmp_path_factory.mktemp("eval_points") / "run", "data.num_samples=300")


@pytest.fixture(scope="module")
def mnist_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval_mnist")
    return trained_run(root / "run", "model=cnn", *mnist_data(write_mnist(root / "data")))


def test_eval_cli_uses_the_run_config_with_overrides(points_ckpt: Path, tmp_path: Path) -> None:
    run_dir = points_ckpt.parents[1]
    result = run_script(
        "eval", f"ckpt_path={run_dir}", "data.batch_size=7", f"hydra.run.dir={tmp_path}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    config = (tmp_path / "config_tree.log").read_text()
    assert "num_samples: 300" in config and "batch_size: 7" in config
    assert 0 <= read_metrics(tmp_path)["test/acc"] <= 1
    # the first screen says whence the data came (eval.yaml's default is the points)
    assert "\nEvaluate: data=as trained, trainer=default" in result.stdout, result.stdout


def test_the_checkpoints_data_config_takes_command_line_overrides(make_cfg, points_ckpt) -> None:
    args = ["data.batch_size=5", "data.std=0.5", "~data.pin_memory"]
    cfg = make_cfg(f"ckpt_path={points_ckpt}", *args, config_name="eval")
    use_trained_config(cfg, str(points_ckpt), ("data",))
    trained = torch.load(points_ckpt, weights_only=True)["built_from"]["data"]
    assert cfg.data._target_ == trained["_target_"] == "src.data.points.PointsDataModule"
    assert cfg.data.num_samples == trained["num_samples"] == 300
    assert (cfg.data.batch_size, cfg.data.std) == (5, 0.5)
    assert "pin_memory" not in cfg.data and cfg.data.seed == trained["seed"]


def test_a_checkpoint_out_of_its_run_directory_evaluates_on_its_own_data(
    make_cfg, points_ckpt: Path, tmp_path: Path
) -> None:
    bare = shutil.copy(points_ckpt, tmp_path / "model.ckpt")
    quiet = ["logger=none", "extras.print_config=false"]
    alone = make_cfg(f"ckpt_path={bare}", *quiet, config_name="eval")
    from_run = make_cfg(f"ckpt_path={points_ckpt}", *quiet, config_name="eval")
    assert evaluate(alone) == pytest.approx(evaluate(from_run))


def test_eval_refuses_data_the_model_cannot_take(make_cfg, mnist_ckpt: Path) -> None:
    args = ["data=points", "extras.print_config=false"]
    cfg = make_cfg(f"ckpt_path={mnist_ckpt}", *args, config_name="eval")
    with pytest.raises(
        ConfigError, match=r"image inputs 1x28x28 .* choose the data it was trained"
    ):
        evaluate(cfg)


OLD_CHECKPOINTS = PROJECT_ROOT / "tests" / "data" / "checkpoints"


@pytest.mark.parametrize("name", ["1f161fe-rnn-sine.ckpt", "3811642-rnn-sine.ckpt"])
def test_checkpoints_of_earlier_versions_load_or_say_what_they_lack(make_cfg, name: str) -> None:
    ckpt_path = f"ckpt_path={OLD_CHECKPOINTS / name}"
    if name.startswith("1f161fe"):  # before checkpoints carried their data config
        with pytest.raises(
            ConfigError,
            match=r"does not record the data it was trained on .*"
            r"takes regression of sequence inputs 50x1 .*: add data=sine$",
        ):
            evaluate(make_cfg(ckpt_path, config_name="eval"))
        ckpt_path = f"{ckpt_path} data=sine"
    metrics = evaluate(make_cfg(*ckpt_path.split(), config_name="eval"))
    assert metrics["test/loss"] == pytest.approx(0.15836603939533234, abs=1e-6)  # as it was
