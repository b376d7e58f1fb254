"""DDP on the CPU (`trainer=ddp_sim`, 2 processes over gloo): sharding, synced metrics, one run
directory written by rank 0, and the command that starts the other ranks."""

import csv
import json
import os
import socket
import sys
from pathlib import Path

import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict, read_write

from src.engine.hydra_callbacks import EndDistributedJob
from src.engine.launch import ddp_rank_command
from src.engine.loading import load_module
from tests.conftest import TRUSTED, run_script, write_image_folder

TRAIN_POINTS, BATCH_SIZE, RANKS = 1600, 32, 2  # configs/data/points.yaml: 2000 points, 80% train
FAST = [
    "trainer=ddp_sim",
    "trainer.max_epochs=1",
    "logger=csv",
    "callbacks.figures=null",
    "test=false",
]


def val_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv") as file:
        return [row for row in csv.DictReader(file) if row.get("val/loss")]


def full_val_metrics(run_dir: Path) -> tuple[float, float]:
    """Loss and accuracy of the run's last checkpoint on the whole validation split, computed in
    one process."""
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    inputs, targets = datamodule.splits["val"]
    module = load_module(run_dir / "checkpoints" / "last.ckpt", TRUSTED)[0].eval()
    with torch.no_grad():
        outputs = module(inputs)
    accuracy = (module.predictions(outputs) == targets).float().mean()
    return module.loss(outputs, targets).item(), accuracy.item()


def test_ddp_sim_shards_batches_syncs_metrics_and_writes_one_run_directory(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = [f"hydra.run.dir={run_dir}", f"paths.log_dir={tmp_path / 'logs'}"]
    result = run_script("train", *FAST, *args, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [path.name for path in tmp_path.iterdir()] == ["run"]  # no directory per rank
    assert list(tmp_path.rglob("metrics.csv")) == [run_dir / "csv" / "metrics.csv"]
    checkpoints = sorted(path.name for path in (run_dir / "checkpoints").iterdir())
    assert checkpoints == ["epoch_000.ckpt", "last.ckpt"]
    # each rank trains on its half of every global batch: half the steps of one process
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == TRAIN_POINTS // (BATCH_SIZE * RANKS)
    (row,) = val_rows(run_dir)  # logged once, by rank 0, for the whole validation split
    loss, accuracy = full_val_metrics(run_dir)
    assert float(row["val/loss"]) == pytest.approx(loss, abs=1e-5)
    assert float(row["val/acc"]) == pytest.approx(accuracy, abs=1e-6)


@pytest.mark.slow
def test_ddp_sim_multirun_trains_each_job_once_in_one_sweep_directory(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    sweep = ["model.optimizer.lr=1e-2,1e-3", f"paths.log_dir={logs}"]
    result = run_script("train", "-m", *FAST, *sweep, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (logs / "train" / "runs").exists()
    (sweep_dir,) = (logs / "train" / "multiruns").iterdir()  # ranks re-run no sweep of their own
    for job, lr in (("0", "0.01"), ("1", "0.001")):
        assert (sweep_dir / job / "csv" / "metrics.csv").is_file()
        assert f"model.optimizer.lr={lr}" in (sweep_dir / job / ".hydra/overrides.yaml").read_text()
        assert len(val_rows(sweep_dir / job)) == 1


# data, and the samples of each split: points 80/10/10 of 2000, 12 + 4 images of each class
SHARDED = {
    "in memory": (["data.batch_size=32"], {"train": 1600, "val": 200, "test": 200}),
    "standard loader, 2 workers": (
        ["data.loader=torch", "data.num_workers=2"],
        {"train": 1600, "val": 200, "test": 200},
    ),
    "image folder": (
        ["data=image_folder", "data.root=IMAGES", "data.image_size=[8,8]", "data.batch_size=4"],
        {"train": 24, "val": 8, "test": 8},
    ),
}


@pytest.mark.parametrize("data", SHARDED)
def test_each_rank_trains_validates_and_tests_on_its_own_shard(tmp_path: Path, data) -> None:
    """Under DDP, the in-memory loaders shard themselves and Lightning's distributed sampler
    shards a standard DataLoader (image_folder): each rank sees half of every split, the ranks
    together all of it, once."""
    args, counts = SHARDED[data]
    images = write_image_folder(tmp_path / "images", {"train": 12, "val": 4})
    args = [arg.replace("IMAGES", str(images)) for arg in args]
    record = f"+callbacks.samples={{_target_: tests.probes.RecordSamples, path: {tmp_path}}}"
    run = [*FAST, "test=true", f"hydra.run.dir={tmp_path / 'run'}", record]
    result = run_script("train", *run, *args, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(RANKS)]
    for stage, count in counts.items():
        first, second = (set(rank[stage]) for rank in ranks)
        assert len(ranks[0][stage]) == len(ranks[1][stage]) == count // RANKS, stage
        assert not first & second and len(first | second) == count, stage


def test_ddp_ranks_of_a_multirun_job_run_that_job_alone(
    make_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_cfg("trainer=ddp_sim")
    hydra_cfg = HydraConfig.get()
    with read_write(hydra_cfg), open_dict(hydra_cfg):
        hydra_cfg.mode = "MULTIRUN"
        hydra_cfg.overrides.task = ["trainer=ddp_sim", "model.optimizer.lr=0.01"]
        hydra_cfg.overrides.hydra = ["hydra.sweep.dir=/sweeps/s", "hydra.mode=MULTIRUN"]
        hydra_cfg.runtime.output_dir = "/sweeps/s/0"
    argv = ["src/train.py", "-m", "trainer=ddp_sim", "model.optimizer.lr=1e-2,1e-3", "-cn", "train"]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(sys.modules["__main__"], "__spec__", None)  # python src/train.py
    command, cwd = ddp_rank_command(local_rank=1)
    assert command == [
        sys.executable,
        str(Path(cwd) / "src" / "train.py"),
        "--config-name=train",
        "trainer=ddp_sim",
        "model.optimizer.lr=0.01",
        "hydra.sweep.dir=/sweeps/s",
        'hydra.run.dir="/sweeps/s/0"',
        "hydra.job.name=train_ddp_process_1",
        "hydra.output_subdir=null",
    ]


def test_a_job_ends_with_its_process_group_and_rendezvous(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setenv("MASTER_ADDR", "node0")
    callback = EndDistributedJob()
    callback.on_job_start(config=None)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("LOCAL_RANK", "0")  # as Lightning sets them when it starts the ranks
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    address = f"tcp://127.0.0.1:{port}"
    torch.distributed.init_process_group("gloo", init_method=address, rank=0, world_size=1)
    callback.on_job_end(config=None, job_return=None)
    assert not torch.distributed.is_initialized()
    assert "LOCAL_RANK" not in os.environ and os.environ["MASTER_ADDR"] == "node0"
