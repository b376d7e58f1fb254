"""Shared fixtures: composed configs for in-process runs, and the real command line."""

import atexit
import csv
import functools
import hashlib
import os
import pickle
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from filelock import FileLock
from hydra import initialize_config_dir
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from src.engine.arguments import configured_trust
from src.engine.config import CONFIG_DIR, PROJECT_ROOT, compose_run
from src.engine.resolvers import register_resolvers
from tests.warm import WarmProcess, WarmPython, forkable

register_resolvers()
# the modules configs/trusted.yaml trusts, for tests that build from a checkpoint themselves
TRUSTED = configured_trust([])
# what commands start with: not what in-process runs add (Lightning's PL_GLOBAL_SEED, ...)
SESSION_ENV = dict(os.environ)


@pytest.fixture
def make_cfg(tmp_path: Path) -> Iterator[Callable[..., DictConfig]]:
    """Compose `train.yaml` (or another config) as Hydra would, writing into `tmp_path`."""

    def make(*overrides: str, config_name: str = "train") -> DictConfig:
        return compose_run(overrides, tmp_path, config_name)

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        yield make


@functools.cache
def warm_python() -> WarmPython | None:
    """This test process's server of warm interpreters (tests/warm.py), started at first use;
    None with `COLD_START=1` or off Linux (it needs pidfds): every command starts fresh."""
    if os.environ.get("COLD_START") == "1" or not hasattr(os, "pidfd_open"):
        return None
    server = WarmPython(Path(tempfile.mkdtemp(prefix="warm-")), PROJECT_ROOT, SESSION_ENV)
    atexit.register(server.close)
    return server


def start_script(
    script: str,
    *args: str,
    env: dict[str, str] | None = None,
    project: Path = PROJECT_ROOT,
    merge_stderr: bool = False,
    fresh: bool = False,
) -> WarmProcess | subprocess.Popen:
    """Start `<project>/src/<script>.py` with `args` as a user does, in a process of its own, its
    output piped (not a terminal) and W&B offline unless `env` says otherwise: forked from a
    warm interpreter that has imported torch and Lightning, or a `fresh` one (also where `env`
    changes what those imports read). Ctrl-C (SIGINT) stops it as in a terminal."""
    env = (
        SESSION_ENV
        | {"WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
        | {"PYTHONPATH": str(project)}  # tests' own callbacks (tests/crashes.py)
        | (env or {})
    )
    env = {name: value for name, value in env.items() if value}
    argv = [str(project / "src" / f"{script}.py"), *args]
    server = warm_python()
    if server and not fresh and forkable(env, server.env):
        return server.start(argv, project, env, merge_stderr)
    return subprocess.Popen(
        [sys.executable, *argv],
        cwd=project,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def run_script(
    script: str, *args: str, timeout: float = 300, **options
) -> subprocess.CompletedProcess:
    """Run `start_script(script, *args, **options)` to its end. Fails the test when a Hydra
    callback raised: Hydra only warns, and the run goes on without what the callback does (its
    run lock, its provenance)."""
    process = start_script(script, *args, **options)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        process.kill()
    result = subprocess.CompletedProcess(process.args, process.wait(), stdout, stderr or "")
    callback_failure = re.search(r"Callback \w+\.\w+ raised .*", result.stderr or result.stdout)
    assert callback_failure is None, callback_failure.group()
    return result


def interrupted_run(
    run_dir: Path, signum: int, *args: str, project: Path = PROJECT_ROOT
) -> subprocess.CompletedProcess:
    """Start a training run with `args` into `run_dir`, send it `signum` once its first
    checkpoint exists (`last.ckpt`), and wait for it to end."""
    process = start_script("train", *args, f"hydra.run.dir={run_dir}", project=project)
    deadline = time.monotonic() + 120
    while not (run_dir / "checkpoints" / "last.ckpt").exists():
        assert process.poll() is None and time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def killed_and_resumed(
    run_dir: Path, step: int, *args: str, hook: str = "on_train_batch_start"
) -> None:
    """Train with `args` into `run_dir`, SIGKILL the run in `hook` once it reaches `step`
    (`tests.crashes.KillAt`), then resume it to its end."""
    kill = f"+callbacks.kill={{_target_: tests.crashes.KillAt, step: {step}, hook: {hook}}}"
    killed = run_script("train", *args, f"hydra.run.dir={run_dir}", kill)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    overrides = run_dir / ".hydra" / "overrides.yaml"  # the kill is not part of the run
    overrides.write_text(yaml.safe_dump(yaml.safe_load(overrides.read_text())[:-1]))
    resumed = run_script("train", f"resume={run_dir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]


def read_metrics(run_dir: Path) -> dict[str, float]:
    """The last logged value of each metric in a run's CSV log."""
    last: dict[str, float] = {}
    with open(run_dir / "csv" / "metrics.csv") as file:
        for row in csv.DictReader(file):
            last |= {name: float(value) for name, value in row.items() if value}
    return last


def shared_run(factory: pytest.TempPathFactory, worker_id: str, name: str, *args: str) -> Path:
    """A training run with `args` through the command line, made once per test session: the
    first test worker to need it trains it, the others wait for it and read it (tests copy a run
    before they change it)."""
    root = factory.getbasetemp()
    root = root.parent if worker_id != "master" else root  # the session's, not one worker's
    run_dir = root / name
    with FileLock(root / f"{name}.lock"):
        if not (run_dir / "metrics.json").is_file():
            result = run_script("train", *args, f"hydra.run.dir={run_dir}")
            assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The embedded default run, exactly as `python src/train.py` runs it."""
    return shared_run(tmp_path_factory, worker_id, "default_run")


def write_mnist(root: Path, num_train: int = 120, num_test: int = 40) -> Path:
    """A tiny MNIST in torchvision's layout: `<root>/MNIST/raw/` with the four IDX files."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", num_train), ("t10k", num_test)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = (np.arange(count) % 10).astype(np.uint8)
        header = struct.pack(">IIII", 2051, count, 28, 28)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 2049, count) + labels.tobytes()
        )
    return root


def write_cifar(root: Path, per_batch: int = 20) -> dict[str, str]:
    """A tiny CIFAR-10 in its real format: `<root>/cifar-10-batches-py/` with python pickles.

    Returns each file's md5, for tests to give torchvision's own integrity check.
    """
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    contents = {f"data_batch_{i}": per_batch for i in range(1, 6)} | {"test_batch": per_batch}
    for name, count in contents.items():
        batch = {
            "batch_label": name,
            "labels": [i % 10 for i in range(count)],
            "data": rng.integers(0, 256, (count, 3 * 32 * 32), dtype=np.uint8),
            "filenames": [f"{i}.png" for i in range(count)],
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    return {path.name: hashlib.md5(path.read_bytes()).hexdigest() for path in folder.iterdir()}


def write_image_folder(
    root: Path,
    splits: dict[str, int] | None = None,
    classes: tuple[str, ...] = ("cat", "dog"),
    size: tuple[int, int] = (20, 24),
) -> Path:
    """PNG images in class subfolders, as torchvision's `ImageFolder` reads them:
    `<root>/<split>/<class>/<n>.png` for each split and its images per class (default: train 12,
    val 4), or `<root>/<class>/<n>.png` for the split "". Each class has its own colour, with
    noise, and each image its own size around `size`, so that resizing matters."""
    rng = np.random.default_rng(0)
    for split, count in (splits or {"train": 12, "val": 4}).items():
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            colour = np.array([220, 40, 40]) if label % 2 == 0 else np.array([40, 40, 220])
            colour = np.roll(colour, label // 2)
            for n in range(count):
                height, width = size[0] + n % 3, size[1] - n % 2
                pixels = rng.normal(colour, 40, (height, width, 3)).clip(0, 255)
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{n}.png")
    return root


@pytest.fixture
def mnist_dir(tmp_path: Path) -> Path:
    return write_mnist(tmp_path / "mnist_data")


@pytest.fixture
def cifar_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Tiny CIFAR-10 files, with torchvision's md5 table pointed at them for this test only."""
    from torchvision.datasets import CIFAR10

    root = tmp_path / "cifar_data"
    md5 = write_cifar(root)
    monkeypatch.setattr(
        CIFAR10, "train_list", [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)]
    )
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(CIFAR10, "meta", CIFAR10.meta | {"md5": md5["batches.meta"]})
    return root


def readme_table() -> dict[tuple[str, str], bool]:
    text = (PROJECT_ROOT / "README.md").read_text()
    table = text.split("<!-- compatibility -->")[1]
    rows = [line.strip("|").split("|") for line in table.strip().splitlines()]
    models = [re.sub(r"[`\s]", "", cell) for cell in rows[0][1:]]
    return {
        (re.sub(r"[`\s]", "", row[0]), model): cell.strip() == "✓"
        for row in rows[2:]
        for model, cell in zip(models, row[1:], strict=True)
    }


QUICK = [
    "trainer.max_epochs=1",
    "test=false",
    "logger=none",
    "callbacks=[model_checkpoint,last_checkpoint]",
]


def trained_run(run_dir: Path, *overrides: str) -> Path:
    """Train one quick epoch in-process into `run_dir`, saving `.hydra/config.yaml` as the CLI
    does; return the best checkpoint."""
    from src.train import train

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose_run([*overrides, *QUICK, "extras.print_config=false"], run_dir)
        train(cfg)
    (run_dir / ".hydra").mkdir()
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    (best,) = (run_dir / "checkpoints").glob("epoch_*.ckpt")
    return best


def mnist_data(data_dir: Path) -> list[str]:
    """Overrides for a tiny MNIST (the `write_mnist` files)."""
    return ["data=mnist", f"data.data_dir={data_dir}", "data.val_size=20"]
