"""Shared fixtures: composed configs for in-process runs, and the real CLI in a subprocess."""

import csv
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from src.utils.config import PROJECT_ROOT, register_resolvers

CONFIG_DIR = PROJECT_ROOT / "configs"
register_resolvers()


@pytest.fixture
def make_cfg(tmp_path: Path) -> Iterator[Callable[..., DictConfig]]:
    """Compose `train.yaml` (or another config) as Hydra would, writing into `tmp_path`."""

    def make(*overrides: str, config_name: str = "train") -> DictConfig:
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path)
            cfg.hydra.runtime.output_dir = str(tmp_path)
            cfg.hydra.job.config_name = config_name
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg.hydra  # a task function never sees this node
        return cfg

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        yield make


def run_script(
    script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run `src/<script>.py` with `args` as a user does, W&B offline unless `env` says otherwise."""
    env = (
        os.environ
        | {"WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
        | (env or {})
    )
    env = {name: value for name, value in env.items() if value}
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "src" / f"{script}.py"), *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def read_metrics(run_dir: Path) -> dict[str, float]:
    """The last logged value of each metric in a run's CSV log."""
    last: dict[str, float] = {}
    with open(run_dir / "csv" / "metrics.csv") as file:
        for row in csv.DictReader(file):
            last |= {name: float(value) for name, value in row.items() if value}
    return last


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded default run, exactly as `python src/train.py` runs it, in a temp directory."""
    run_dir = tmp_path_factory.mktemp("default_run")
    result = run_script("train", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir
