"""Trustworthy runs: exact resume after SIGKILL or SIGTERM, safe checkpoints, non-finite losses."""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from src.eval import evaluate
from src.models import load_module
from src.train import train
from src.utils.config import PROJECT_ROOT, ConfigError
from tests.conftest import run_script

# 4 epochs of 50 steps, dropout on (so the RNG matters), a checkpoint every 10 steps
RUN = [
    "trainer.max_epochs=4",
    "trainer.deterministic=true",
    "model.net.dropout=0.2",
    "callbacks.step_checkpoint.every_n_train_steps=10",
    "callbacks.early_stopping=null",
    "callbacks.rich_progress_bar=null",
    "extras.print_config=false",
]
STEPS_PER_EPOCH = 50


def last_checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """The weights of a run of `RUN` that went all the way."""
    checkpoint = last_checkpoint(run_dir)
    assert checkpoint["global_step"] == 4 * STEPS_PER_EPOCH
    return checkpoint["state_dict"]


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[name] - b[name]).abs().max().item() for name in a)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    result = run_script("train", *RUN, f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return final_weights(run_dir)


def interrupt(run_dir: Path, signum: int, *overrides: str) -> subprocess.CompletedProcess:
    """Start the run, send `signum` once its first step checkpoint exists (mid-epoch 0)."""
    args = [sys.executable, "src/train.py", *RUN, f"hydra.run.dir={run_dir}", *overrides]
    env = os.environ | {"WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    # SIGINT at its default, as in a terminal: a test run started in the background (`cmd &` in a
    # script) passes it on ignored, and the run would never see the Ctrl-C
    process = subprocess.Popen(
        args,
        cwd=PROJECT_ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not (run_dir / "checkpoints" / "last.ckpt").exists():
        assert process.poll() is None and time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(args, process.returncode, "", stderr)


def test_sigkill_mid_epoch_then_resume_ends_with_the_same_weights(uninterrupted, tmp_path) -> None:
    run_dir = tmp_path / "run"
    assert interrupt(run_dir, signal.SIGKILL).returncode == -signal.SIGKILL
    assert last_checkpoint(run_dir)["global_step"] % STEPS_PER_EPOCH != 0  # killed mid-epoch
    result = run_script("train", *RUN, f"hydra.run.dir={run_dir}", "ckpt_path=last")
    assert result.returncode == 0, result.stderr[-3000:]
    assert max_difference(final_weights(run_dir), uninterrupted) <= 1e-6


def test_sigterm_checkpoints_exits_nonzero_and_resume_continues_exactly(
    uninterrupted, tmp_path
) -> None:
    run_dir = tmp_path / "run"
    stopped = interrupt(run_dir, signal.SIGTERM, "logger=wandb")
    assert stopped.returncode == 1
    assert f"resume={run_dir}" in stopped.stderr
    assert (run_dir / "checkpoints" / "on_exception.ckpt").is_file()
    resumed = run_script("train", f"resume={run_dir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert max_difference(final_weights(run_dir), uninterrupted) <= 1e-6
    wandb_ids = {path.name.rsplit("-", 1)[1] for path in run_dir.glob("wandb/offline-run-*")}
    assert len(list(run_dir.glob("wandb/offline-run-*"))) == 2 and len(wandb_ids) == 1


def test_ctrl_c_checkpoints_exits_nonzero_and_the_run_resumes(tmp_path) -> None:
    # Ctrl-C may land inside a step, so the resumed run is whole but not bit-exact
    run_dir = tmp_path / "run"
    assert interrupt(run_dir, signal.SIGINT).returncode == 1
    assert (run_dir / "checkpoints" / "on_exception.ckpt").is_file()
    resumed = run_script("train", f"resume={run_dir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert last_checkpoint(run_dir)["epoch"] == 3


def test_a_run_without_ckpt_path_starts_afresh_beside_old_checkpoints(make_cfg, tmp_path) -> None:
    # Lightning's own on-exception callback would make this fit resume from the first run's
    # last.ckpt (epoch 2 of 1: no training at all)
    quiet = ["test=false", "extras.print_config=false", "callbacks.rich_progress_bar=null"]
    train(make_cfg("trainer.max_epochs=2", *quiet))
    assert last_checkpoint(tmp_path)["global_step"] == 2 * STEPS_PER_EPOCH
    train(make_cfg("trainer.max_epochs=1", *quiet))
    assert last_checkpoint(tmp_path)["global_step"] == STEPS_PER_EPOCH


def test_resume_needs_a_run_directory(tmp_path) -> None:
    result = run_script("train", f"resume={tmp_path}")
    assert result.returncode == 1
    assert f"resume={tmp_path}: {tmp_path}/.hydra/overrides.yaml is missing" in result.stderr


def test_nan_loss_stops_naming_the_step_and_keeps_good_weights(tmp_path) -> None:
    result = run_script("train", "model.optimizer.lr=1e30", *RUN, f"hydra.run.dir={tmp_path}")
    assert result.returncode == 1
    assert "FloatingPointError: train/loss is nan at training step" in result.stderr
    assert "train/loss is nan" in (tmp_path / "error.txt").read_text()
    for path in (tmp_path / "checkpoints").glob("*.ckpt"):
        weights = torch.load(path, weights_only=True)["state_dict"].values()
        assert all(torch.isfinite(w).all() for w in weights), path.name


def test_nan_loss_batches_can_be_skipped(make_cfg) -> None:
    cfg = make_cfg("model.optimizer.lr=1e30", "model.nonfinite_loss=skip", "trainer.max_epochs=1")
    with pytest.warns(UserWarning, match="train/loss is nan at training step .*: batch skipped"):
        metrics = train(cfg)
    assert "test/acc" in metrics


class Payload:
    """A pickle that creates a file when loaded: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_checkpoint_carrying_code_is_refused_everywhere(make_cfg, default_run, tmp_path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save(last_checkpoint(default_run) | {"payload": Payload(marker)}, evil)
    refused = f"checkpoint {evil} cannot be loaded safely"
    with pytest.raises(ConfigError, match=refused):
        train(make_cfg(f"ckpt_path={evil}"))
    with pytest.raises(ConfigError, match=refused):
        evaluate(make_cfg(f"ckpt_path={evil}", config_name="eval"))
    with pytest.raises(ConfigError, match=refused):
        load_module(evil)
    assert not marker.exists()


def test_a_truncated_checkpoint_fails_fast_and_touches_nothing(default_run, tmp_path) -> None:
    checkpoints = default_run / "checkpoints"
    before = {path.name: sha256(path) for path in checkpoints.iterdir()}
    truncated = tmp_path / "truncated.ckpt"
    data = (checkpoints / "last.ckpt").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    run_dir = tmp_path / "run"
    started = time.monotonic()
    result = run_script("train", f"ckpt_path={truncated}", f"hydra.run.dir={run_dir}")
    assert result.returncode == 1 and time.monotonic() - started < 30
    assert f"checkpoint {truncated} cannot be loaded safely" in result.stderr
    assert not (run_dir / "checkpoints").exists()
    assert {path.name: sha256(path) for path in checkpoints.iterdir()} == before


def test_a_corrupt_dataset_stops_before_training(tmp_path, mnist_dir) -> None:
    images = mnist_dir / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])
    run_dir = tmp_path / "run"
    args = ["data=mnist", "model=cnn", f"data.data_dir={mnist_dir}", f"hydra.run.dir={run_dir}"]
    result = run_script("train", *args)
    assert result.returncode == 1
    assert f"MNIST is missing or corrupt under data.data_dir={mnist_dir}" in result.stderr
    assert not list(run_dir.glob("checkpoints/*.ckpt"))


def test_the_saved_config_of_a_run_reproduces_it(default_run, tmp_path) -> None:
    shutil.copytree(default_run / ".hydra", tmp_path / "saved")
    args = ["--config-path", str(tmp_path / "saved"), "--config-name", "config"]
    result = run_script("train", *args, f"hydra.run.dir={tmp_path / 'rerun'}")
    assert result.returncode == 0, result.stderr[-3000:]
    rerun, original = last_checkpoint(tmp_path / "rerun"), last_checkpoint(default_run)
    assert max_difference(rerun["state_dict"], original["state_dict"]) == 0
