"""Dashboards read back with the real tools: a TensorBoard server and W&B's offline run files."""

import json
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf
from wandb.proto import wandb_internal_pb2

from src.data.spec import DataSpec
from src.engine.building import build_model
from src.engine.loggers import TensorBoardLogger
from src.train import train
from tests.conftest import read_metrics, run_script

NO_WANDB_ACCOUNT = {"WANDB_MODE": "", "WANDB_API_KEY": ""}  # and HOME without a .netrc


def train_run(run_dir: Path, *overrides: str) -> Any:
    """`src/train.py` in a subprocess writing to `run_dir`, W&B without an account."""
    env = NO_WANDB_ACCOUNT | {"HOME": str(run_dir.parent)}
    return run_script("train", f"hydra.run.dir={run_dir}", *overrides, env=env)


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default run with every logger (TensorBoard, CSV, W&B offline)."""
    run_dir = tmp_path_factory.mktemp("dashboards") / "run"
    result = train_run(run_dir, "logger=many")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


# --- TensorBoard: a real server on a free local port, read through its HTTP data API


@pytest.fixture(scope="module")
def tensorboard(logged_run: Path) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = {"logdir": logged_run / "tensorboard", "host": "127.0.0.1", "port": port}
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--load_fast=false"]
        + [f"--{name}={value}" for name, value in options.items()],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while "test/acc" not in _get_json(url, "/data/plugin/scalars/tags", quiet=True).get(
            ".", {}
        ):
            assert time.monotonic() < deadline, "TensorBoard did not serve the run within 90 s"
            time.sleep(1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def _get(url: str, path: str, body: dict | None = None) -> bytes:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "X-XSRF-Protected": "1"}
    with urllib.request.urlopen(urllib.request.Request(url + path, data, headers), timeout=10) as r:
        return r.read()


def _get_json(url: str, path: str, body: dict | None = None, quiet: bool = False) -> Any:
    try:
        return json.loads(_get(url, path, body))
    except OSError:
        if quiet:  # the server is still starting
            return {}
        raise


def test_tensorboard_serves_losses_metrics_lr_and_throughput(tensorboard, logged_run) -> None:
    tags = _get_json(tensorboard, "/data/plugin/scalars/tags")["."]
    expected = {"train/loss_step", "train/loss", "train/acc_step", "train/acc"}
    expected |= {"val/loss", "val/acc", "test/loss", "test/acc", "lr-Adam"}
    assert expected | {"train/device/samples_per_sec"} <= tags.keys()
    test_acc = _get_json(tensorboard, "/data/plugin/scalars/scalars?run=.&tag=test/acc")
    assert test_acc[-1][2] == pytest.approx(read_metrics(logged_run)["test/acc"])
    loss_steps = _get_json(tensorboard, "/data/plugin/scalars/scalars?run=.&tag=train/loss_step")
    assert len(loss_steps) >= 4  # every log_every_n_steps over 250 steps
    throughput = _get_json(
        tensorboard, "/data/plugin/scalars/scalars?run=.&tag=train/device/samples_per_sec"
    )
    assert all(value > 0 for _, _, value in throughput)


def test_tensorboard_serves_the_pictures_at_several_epochs(tensorboard) -> None:
    tags = _get_json(tensorboard, "/data/plugin/images/tags")["."]
    assert {"val/decision_boundary", "test/decision_boundary", "test/confusion_matrix"} <= set(tags)
    during = _get_json(tensorboard, "/data/plugin/images/images?run=.&tag=val/decision_boundary")
    assert len({image["step"] for image in during}) == 2  # epochs 4 and 9
    png = _get(tensorboard, "/data/plugin/images/individualImage?" + during[-1]["query"])
    assert png.startswith(b"\x89PNG")


def test_tensorboard_serves_hparams_with_final_metrics_and_the_graph(tensorboard) -> None:
    experiment = _get_json(
        tensorboard, "/data/plugin/hparams/experiment", body={"experimentName": ""}
    )
    hparams = {info["name"] for info in experiment["hparamInfos"]}
    assert {"model/optimizer/lr", "data/batch_size", "seed", "tags", "git_commit"} <= hparams
    assert {"git_dirty", "trainer/max_epochs"} <= hparams
    metrics = {info["name"]["tag"] for info in experiment["metricInfos"]}
    assert {"hparams/test/acc", "hparams/val/loss"} <= metrics
    assert _get_json(tensorboard, "/data/plugin/graphs/info")["."]["run_graph"]


@pytest.mark.parametrize(
    ("model", "spec"),
    [
        ("mlp", DataSpec("classification", "vector", (2,), 2)),
        ("cnn", DataSpec("classification", "image", (1, 28, 28), 10)),
        ("lstm", DataSpec("classification", "image", (1, 28, 28), 10)),
        ("rnn", DataSpec("regression", "sequence", (50, 1), 1)),
        ("resnet18", DataSpec("classification", "image", (3, 32, 32), 10)),
    ],
)
def test_graph_of_each_network_is_logged_once_without_warnings(
    make_cfg, tmp_path, model: str, spec: DataSpec
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = make_cfg(f"model={model}")
    module = build_model(OmegaConf.to_container(cfg.model, resolve=True), spec, cfg.trusted)
    logger = TensorBoardLogger(tmp_path, name="", version="", log_graph=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logger.log_graph(module)
        logger.log_graph(module)  # as at test time: not added again
    logger.finalize("success")
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert len(events.Graph().node) > 3


# --- Weights & Biases: the offline run's transaction log, read with W&B's own protobufs


def wandb_records(run_dir: Path) -> list[wandb_internal_pb2.Record]:
    """Every record of the W&B run(s) under `run_dir/wandb`, from the `.wandb` files: a
    LevelDB-style log of 32 KiB blocks after a 7-byte header, each record split into chunks
    with a 7-byte header (checksum, length, type: full, first, middle or last)."""
    records = []
    for path in sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb")):
        data, position, chunks = path.read_bytes(), 7, []
        while position + 7 <= len(data):
            if (room := 32768 - position % 32768) < 7:
                position += room
                continue
            _, length, kind = struct.unpack("<IHB", data[position : position + 7])
            if kind == 0:
                break
            chunks.append(data[position + 7 : position + 7 + length])
            position += 7 + length
            if kind in (1, 4):  # full or last
                records.append(wandb_internal_pb2.Record.FromString(b"".join(chunks)))
                chunks = []
    return records


ITEMS = {"history": "item", "summary": "update", "config": "update"}


def wandb_values(records: list[wandb_internal_pb2.Record], kind: str) -> dict[str, Any]:
    """The latest value of each key in the records of `kind` (history, summary or config)."""
    values = {}
    for record in records:
        if record.WhichOneof("record_type") == kind:
            for item in getattr(getattr(record, kind), ITEMS[kind]):
                values[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return values


def exit_codes(records: list[wandb_internal_pb2.Record]) -> list[int]:
    return [r.exit.exit_code for r in records if r.WhichOneof("record_type") == "exit"]


def test_wandb_offline_run_holds_the_metrics_and_config(logged_run: Path) -> None:
    records = wandb_records(logged_run)
    history = wandb_values(records, "history")
    assert {
        "train/loss_step",
        "val/acc",
        "lr-Adam",
        "train/device/samples_per_sec",
    } <= history.keys()
    assert {"val/decision_boundary/_type", "test/confusion_matrix/_type"} <= history.keys()
    summary = wandb_values(records, "summary")
    assert summary["test/acc"] == pytest.approx(read_metrics(logged_run)["test/acc"])
    config = wandb_values(records, "config")
    assert config["model"]["optimizer"]["lr"] == 0.001 and config["seed"] == 0
    assert len(config["git_commit"]) == 40 and "git_dirty" in config
    assert exit_codes(records) == [0]


def test_a_failing_run_is_marked_failed_in_wandb(tmp_path: Path) -> None:
    monitor = "callbacks.early_stopping.monitor=val/missing"  # fails after the first epoch
    result = train_run(tmp_path / "run", "logger=wandb", monitor)
    assert result.returncode != 0
    assert exit_codes(wandb_records(tmp_path / "run")) == [1]


def test_multirun_jobs_share_one_wandb_group(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = ["-m", "seed=0,1", "logger=wandb", "trainer.max_epochs=1", f"hydra.sweep.dir={sweep}"]
    result = run_script("train", *args, env=NO_WANDB_ACCOUNT | {"HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    for job in ("0", "1"):
        records = wandb_records(sweep / job)
        (run,) = (r.run for r in records if r.WhichOneof("record_type") == "run")
        assert run.run_group == "sweep"
        assert exit_codes(records) == [0]


def test_a_run_without_loggers_still_saves_its_pictures(tmp_path: Path) -> None:
    result = train_run(
        tmp_path / "run",
        "logger=none",
        "trainer.max_epochs=1",
        "callbacks.figures.every_n_epochs=1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = {path.name for path in (tmp_path / "run" / "figures").glob("*.png")}
    assert {"test_decision_boundary.png", "val_decision_boundary_epoch000.png"} <= figures
    assert not (tmp_path / "run" / "tensorboard").exists()


# --- MLflow: a local store, read back through MLflow's own client


def test_mlflow_run_holds_params_metrics_and_pictures(make_cfg, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    logs = tmp_path / "logs"
    cfg = make_cfg("logger=mlflow", f"paths.log_dir={logs}", "trainer.max_epochs=5")
    metrics = train(cfg)
    client = MlflowClient(tracking_uri=f"sqlite:///{logs}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    assert run.data.params["model/optimizer/lr"] == "0.001"
    assert run.data.params["git_commit"]
    assert run.data.metrics["test/acc"] == pytest.approx(metrics["test/acc"])
    history = client.get_metric_history(run.info.run_id, "val/loss")
    assert len(history) == 5  # one value per epoch
    pictures = [a.path for a in client.list_artifacts(run.info.run_id, "figures")]
    assert {
        "figures/test_decision_boundary.png",
        "figures/val_decision_boundary_epoch004.png",
    } <= set(pictures)
