"""Every option of every config group composes; the default configs instantiate; this machine's
settings and W&B's own settings are taken."""

import shutil

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.pytorch import Trainer
from omegaconf import OmegaConf

from src.engine.building import build_model
from src.engine.config import CONFIG_DIR, PROJECT_ROOT, group_options
from src.engine.resolvers import wandb_offline
from src.engine.trainer import build_trainer
from src.models.task_module import TaskModule

GROUPS = ["data", "model", "model/optimizer", "model/scheduler", "trainer", "callbacks"]
GROUPS += ["logger", "paths", "extras", "hydra", "debug", "experiment", "hparams_search"]


@pytest.mark.parametrize(
    ("group", "option"), [(group, option) for group in GROUPS for option in group_options(group)]
)
def test_every_option_composes(make_cfg, group: str, option: str) -> None:
    cfg = make_cfg(f"{group}={option}")
    assert OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("config_name", ["train", "eval"])
def test_default_config_instantiates(make_cfg, config_name: str) -> None:
    overrides = ["ckpt_path=unused.ckpt"] if config_name == "eval" else []
    cfg = make_cfg(*overrides, "logger=many", config_name=config_name)
    datamodule = instantiate(cfg.data)
    assert isinstance(build_trainer(cfg), Trainer)
    if "model" in cfg:
        model = build_model(
            OmegaConf.to_container(cfg.model, resolve=True), datamodule.spec, cfg.trusted
        )
        assert isinstance(model, TaskModule)


@pytest.mark.parametrize("optimizer", group_options("model/optimizer"))
@pytest.mark.parametrize("scheduler", group_options("model/scheduler"))
def test_optimizers_and_schedulers_build(make_cfg, optimizer: str, scheduler: str) -> None:
    cfg = make_cfg(f"model/optimizer={optimizer}", f"model/scheduler={scheduler}")
    model = build_model(
        OmegaConf.to_container(cfg.model, resolve=True), instantiate(cfg.data).spec, cfg.trusted
    )
    configured = model.configure_optimizers()
    optimizer_obj = configured["optimizer"] if isinstance(configured, dict) else configured
    assert type(optimizer_obj).__name__.lower() == optimizer
    if scheduler != "none":
        assert configured["lr_scheduler"].get("monitor") == (
            cfg.monitor if scheduler == "plateau" else None
        )


def test_a_local_config_sets_this_machines_paths(tmp_path) -> None:
    configs = tmp_path / "configs"
    shutil.copytree(CONFIG_DIR, configs)
    local = {"paths": {"data_dir": "/datasets"}}
    (configs / "local" / "default.yaml").write_text("# @package _global_\n" + yaml.safe_dump(local))
    with initialize_config_dir(str(configs), version_base="1.3"):
        assert compose("train", overrides=["data=mnist"]).data.data_dir == "/datasets"
    (configs / "local" / "default.yaml").unlink()  # optional: without it, the project's data/
    with initialize_config_dir(str(configs), version_base="1.3"):
        assert compose("train").paths.data_dir == str(PROJECT_ROOT / "data")


@pytest.mark.parametrize(
    ("environment", "netrc", "offline"),
    [
        ({}, None, True),
        ({"WANDB_MODE": "offline", "WANDB_API_KEY": "x" * 40}, None, True),
        ({"WANDB_API_KEY": "x" * 40}, None, False),
        ({}, "api.wandb.ai", False),
        ({"WANDB_BASE_URL": "https://wandb.example.org"}, "wandb.example.org", False),
        ({"WANDB_BASE_URL": "https://wandb.example.org"}, "api.wandb.ai", True),
    ],
)
def test_wandb_goes_online_only_with_a_key_for_its_server(
    monkeypatch, tmp_path, environment, netrc, offline
) -> None:
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    if netrc:
        (tmp_path / ".netrc").write_text(f"machine {netrc}\n  login user\n  password {'k' * 40}\n")
        (tmp_path / ".netrc").chmod(0o600)
    assert wandb_offline() is offline
