"""Training end to end: every model, the default run, its run directory, eval, resume, multirun."""

import csv
import logging
import shutil
import subprocess
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from src.engine import provenance
from src.engine.building import build_model
from src.engine.loading import load_module
from src.errors import ConfigError
from src.eval import evaluate
from src.train import train
from tests.conftest import TRUSTED, read_metrics, readme_table, run_script, write_image_folder

COMPATIBLE = [pair for pair, works in readme_table().items() if works]


@pytest.mark.parametrize(("data", "model"), COMPATIBLE, ids=["-".join(p) for p in COMPATIBLE])
def test_fast_dev_run_trains_every_compatible_pair(
    make_cfg, request, tmp_path, data: str, model: str
) -> None:
    overrides = [f"data={data}", f"model={model}", "debug=fdr", "extras.print_config=false"]
    if data == "image_folder":  # PNG files, read by the real ImageFolder
        root = write_image_folder(tmp_path / "images", {"train": 2, "val": 2})
        overrides += [f"data.root={root}", "data.image_size=[32,32]", "data.num_workers=0"]
    if data in ("mnist", "cifar"):  # tiny files in the real formats
        data_dir = request.getfixturevalue(f"{data}_dir")
        overrides += [f"data.data_dir={data_dir}", "data.val_size=20"]
    if data in ("mnist", "cifar", "fake_images"):
        overrides += ["data.batch_size=8"]
    metrics = train(make_cfg(*overrides))
    assert {"train/loss", "val/loss", "test/loss"} <= metrics.keys()


def test_seed_zero_makes_runs_repeatable(make_cfg) -> None:
    def val_loss(seed: int) -> float:
        overrides = (
            f"seed={seed}",
            "trainer.max_epochs=2",
            "test=false",
            "callbacks=none",
            "logger=none",
        )
        return train(make_cfg(*overrides, "extras.print_config=false"))["val/loss"]

    assert val_loss(0) == val_loss(0) != val_loss(1)


def test_metrics_updated_in_chunks_cover_every_sample_once(make_cfg) -> None:
    # 7 batches (the last of 20), metrics updated every 2 batches and at the end of the epoch
    cfg = make_cfg()
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    module = build_model(
        OmegaConf.to_container(cfg.model, resolve=True), datamodule.spec, cfg.trusted
    )
    inputs, targets = datamodule.splits["val"]
    loader = DataLoader(TensorDataset(inputs, targets), batch_size=30)
    trainer = L.Trainer(log_every_n_steps=2, logger=False, enable_progress_bar=False)
    (logged,) = trainer.validate(module, loader, verbose=False)
    with torch.no_grad():
        outputs = module(inputs)
    accuracy = (module.predictions(outputs) == targets).float().mean().item()
    assert logged["val/loss"] == pytest.approx(module.loss(outputs, targets).item(), abs=1e-6)
    assert logged["val/acc"] == pytest.approx(accuracy, abs=1e-6)


def test_max_steps_may_stop_a_run_mid_epoch(make_cfg, tmp_path: Path) -> None:
    # 50 steps an epoch: the run's result is epoch 0's validation, its best checkpoint's
    metrics = train(make_cfg("trainer.max_steps=60", "extras.print_config=false"))
    assert (
        torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 60
    )
    assert (metrics["best/epoch"], metrics["best/step"]) == (0, 50) and "test/acc" in metrics


def test_default_run_reaches_99_percent_test_accuracy(default_run: Path) -> None:
    assert read_metrics(default_run)["test/acc"] >= 0.99


def test_run_directory_holds_config_checkpoints_metrics_and_provenance(default_run: Path) -> None:
    for name in [".hydra/config.yaml", ".hydra/overrides.yaml", "config_tree.log", "train.log"]:
        assert (default_run / name).is_file(), name
    assert (default_run / "checkpoints" / "last.ckpt").is_file()
    assert len(list((default_run / "checkpoints").glob("epoch_*.ckpt"))) == 1
    assert {"train/loss", "train/loss_step", "val/acc", "test/acc"} <= read_metrics(
        default_run
    ).keys()
    provenance = (default_run / "provenance.yaml").read_text()
    assert "src/train.py" in provenance and "git_commit:" in provenance
    assert "git_dirty:" in provenance
    assert "torch==" in (default_run / "requirements.txt").read_text()
    boundaries = sorted(path.name for path in (default_run / "figures").glob("*boundary*.png"))
    assert boundaries == [
        "test_decision_boundary.png",
        "val_decision_boundary_epoch004.png",
        "val_decision_boundary_epoch009.png",
    ]


def test_checkpoints_load_with_weights_only(default_run: Path) -> None:
    for path in (default_run / "checkpoints").glob("*.ckpt"):
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        assert checkpoint["built_from"]["spec"]["task"] == "classification"
        module, _ = load_module(path, TRUSTED)
        assert module(torch.zeros(4, 2)).shape == (4, 2)


def test_eval_reproduces_the_test_metrics_of_training(default_run: Path, make_cfg) -> None:
    (best,) = (default_run / "checkpoints").glob("epoch_*.ckpt")
    trained = read_metrics(default_run)
    evaluated = evaluate(make_cfg(f"ckpt_path={best}", config_name="eval"))
    for name in ("test/acc", "test/loss"):
        assert evaluated[name] == pytest.approx(trained[name], abs=1e-6)


def test_resume_from_last_continues_the_step_count(
    default_run: Path, make_cfg, tmp_path: Path
) -> None:
    run_dir = tmp_path  # where make_cfg's runs write
    shutil.copytree(default_run, run_dir, dirs_exist_ok=True)
    before = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    done = before["epoch"] + 1  # "epoch" counts from 0
    steps_per_epoch = before["global_step"] // done
    epochs = done + 2
    args = ["ckpt_path=last", f"trainer.max_epochs={epochs}", "test=false"]
    train(make_cfg(*args, "callbacks.early_stopping=null"))
    after = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert after["global_step"] == epochs * steps_per_epoch
    assert after["epoch"] + 1 == epochs
    assert sorted(path.name for path in (run_dir / "checkpoints").glob("last*")) == ["last.ckpt"]


def test_multirun_runs_each_job_in_its_own_directory(tmp_path: Path) -> None:
    args = ["-m", "model=mlp,logreg", "trainer.max_epochs=1", f"hydra.sweep.dir={tmp_path}"]
    result = run_script("train", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    for job in ("0", "1"):
        assert (tmp_path / job / "checkpoints" / "last.ckpt").is_file()
        assert read_metrics(tmp_path / job)["test/acc"] > 0.9
    with Image.open(tmp_path / "summary_model.png") as picture:  # val/loss by model
        assert picture.format == "PNG"


def test_git_diff_holds_changed_and_new_files(tmp_path, monkeypatch) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "kept.py").write_text("a = 1\n")
    git("add", "kept.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    (tmp_path / "kept.py").write_text("a = 2\n")
    (tmp_path / "new_net.py").write_text("class TinyNet: ...\n")  # not yet added, as in Adding
    monkeypatch.setattr(provenance, "PROJECT_ROOT", tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    provenance.write_provenance(run_dir, resumed=False)
    diff = (run_dir / "git.diff").read_text()
    assert "+a = 2" in diff and "+class TinyNet: ..." in diff
    assert yaml.safe_load((run_dir / "provenance.yaml").read_text())["git_dirty"] is True


def test_a_run_is_judged_by_its_best_checkpoint(make_cfg, tmp_path: Path) -> None:
    """Early stopping ends the run two epochs after its best one: the result (what sweeps rank
    and Optuna minimises) is the best checkpoint's val/loss, the one the test evaluates."""
    noisy = ["data.std=3.0", "model.optimizer.lr=1.0", "callbacks.early_stopping.patience=2"]
    metrics = train(make_cfg(*noisy, "trainer.max_epochs=25", "extras.print_config=false"))
    with open(tmp_path / "csv" / "metrics.csv") as file:
        validations = [row for row in csv.DictReader(file) if row["val/loss"]]
    best = min(validations, key=lambda row: float(row["val/loss"]))
    assert metrics["best/val/loss"] == pytest.approx(float(best["val/loss"]))
    assert metrics["best/epoch"] == int(best["epoch"]) < len(validations) - 1
    assert metrics["val/loss"] > metrics["best/val/loss"]  # the last epoch's, worse
    assert (tmp_path / "checkpoints" / f"epoch_{metrics['best/epoch']:03d}.ckpt").is_file()


@pytest.mark.parametrize("monitor", ["val/accuracy", "train/loss"])  # val/acc is logged
def test_a_monitor_that_validation_does_not_log_ends_the_run_in_one_sentence(
    make_cfg, monitor: str
) -> None:
    cfg = make_cfg(f"monitor={monitor}", "trainer.max_epochs=3")
    with pytest.raises(ConfigError, match=rf"^monitor={monitor} is not logged when validation"):
        train(cfg)
    assert not list(Path(cfg.paths.output_dir).glob("checkpoints/epoch_*.ckpt"))


def test_a_run_without_validation_says_once_what_is_off(make_cfg, caplog) -> None:
    cfg = make_cfg("+trainer.limit_val_batches=0", "monitor=null", "trainer.max_epochs=1")
    with caplog.at_level(logging.WARNING):
        metrics = train(cfg)
    assert caplog.text.count("No validation (trainer.limit_val_batches=0): the checkpoint") == 1
    assert "test/acc" in metrics
