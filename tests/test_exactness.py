"""Exact off the default path: the Lightning settings people reach for resume to the same
weights and the same metrics history after a SIGKILL or a SIGTERM at any training batch."""

import csv
import signal
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import run_script, shared_run

# 4 epochs of 50 batches, dropout on (so the random states matter), a checkpoint every 10 steps
RUN = [
    "trainer.max_epochs=4",
    "trainer.deterministic=true",
    "model.net.dropout=0.2",
    "callbacks.last_checkpoint.every_n_train_steps=10",
    "callbacks.early_stopping=null",
    "callbacks.rich_progress_bar=null",
    "extras.print_config=false",
]
# a scheduler of the user's, set on the command line: a step of its schedule per optimizer step
ONE_CYCLE = ["model.scheduler._target_=torch.optim.lr_scheduler.OneCycleLR"]
ONE_CYCLE += ["model.scheduler.max_lr=0.05", "model.scheduler.total_steps=200"]
ONE_CYCLE += ["model.scheduler.interval=step"]
SETTINGS = {
    "default": [],
    # every epoch's validation counts as no improvement: each step of the schedule halves the lr
    "plateau": [
        "model/scheduler=plateau",
        "model.scheduler.patience=0",
        "+model.scheduler.threshold=10",
    ],
    "cosine": ["model/scheduler=cosine"],
    "step": ["model/scheduler=step", "model.scheduler.step_size=1"],
    "accumulate 4": ["+trainer.accumulate_grad_batches=4"],
    "val_check_interval 0.5": ["+trainer.val_check_interval=0.5"],
    "OneCycleLR": ONE_CYCLE,
    "bf16-mixed": ["trainer.precision=bf16-mixed"],
    "ddp_sim": ["trainer=ddp_sim"],
}
# Lightning's ThroughputMonitor counts batches, samples and time from each process's start
PER_PROCESS = ("train/batches", "train/samples", "train/time", "train/device/")
# (epoch, batches into it, hook) when the signal comes: mid-epoch 2, inside a window of 4
# accumulated batches, or as it begins
STOPS = {
    "mid-epoch": (2, 13, "on_train_batch_start"),
    "between epochs": (2, 0, "on_train_epoch_start"),
}
BATCHES_PER_EPOCH = 50  # each process's (two processes under ddp_sim: half as many)


def history(run_dir: Path) -> list[dict[str, str]]:
    """The run's metrics.csv rows, without the per-process throughput counters."""
    with open(run_dir / "csv" / "metrics.csv") as file:
        rows = list(csv.DictReader(file))
    return [{k: v for k, v in row.items() if v and not k.startswith(PER_PROCESS)} for row in rows]


def final_state(run_dir: Path) -> tuple[dict[str, torch.Tensor], list]:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    return checkpoint["state_dict"], checkpoint["lr_schedulers"]


def stopped_and_resumed(run_dir: Path, stop: str, signum: str, *args: str) -> None:
    epoch, into, hook = STOPS[stop]
    batches = epoch * BATCHES_PER_EPOCH // (2 if "trainer=ddp_sim" in args else 1) + into
    kill = "+callbacks.kill={_target_:tests.crashes.KillAt,"
    kill += f"batches:{batches},hook:{hook},signal:{signum}}}"
    stopped = run_script("train", *args, f"hydra.run.dir={run_dir}", kill)
    assert stopped.returncode == (-signal.SIGKILL if signum == "SIGKILL" else 1), stopped.stderr[
        -3000:
    ]
    overrides = run_dir / ".hydra" / "overrides.yaml"  # the kill is not part of the run
    overrides.write_text(yaml.safe_dump(yaml.safe_load(overrides.read_text())[:-1]))
    resumed = run_script("train", f"resume={run_dir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("stop", STOPS)
@pytest.mark.parametrize("signum", ["SIGKILL", "SIGTERM"])
@pytest.mark.parametrize("setting", SETTINGS)
def test_a_run_stopped_at_any_batch_resumes_exactly(
    setting: str, signum: str, stop: str, tmp_path: Path, tmp_path_factory, worker_id: str
) -> None:
    args = [*RUN, *SETTINGS[setting]]
    whole = shared_run(tmp_path_factory, worker_id, f"whole_{setting.replace(' ', '_')}", *args)
    stopped_and_resumed(tmp_path / "run", stop, signum, *args)
    weights, schedulers = final_state(tmp_path / "run")
    expected_weights, expected_schedulers = final_state(whole)
    difference = max((weights[k] - expected_weights[k]).abs().max().item() for k in weights)
    assert (difference, schedulers) == (0, expected_schedulers)
    assert history(tmp_path / "run") == history(whole)
