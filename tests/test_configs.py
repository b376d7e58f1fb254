"""Every option of every config group composes; the default configs instantiate."""

import pytest
from hydra.utils import instantiate
from lightning.pytorch import Trainer
from omegaconf import OmegaConf

from src.models import build_module
from src.models.task_module import TaskModule
from src.run.config import CONFIG_DIR
from src.run.trainer import build_trainer

GROUPS = ["data", "model", "model/optimizer", "model/scheduler", "trainer", "callbacks"]
GROUPS += ["logger", "paths", "extras", "hydra", "debug", "experiment", "hparams_search"]


def options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize(
    ("group", "option"), [(group, option) for group in GROUPS for option in options(group)]
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
        model = build_module(OmegaConf.to_container(cfg.model, resolve=True), datamodule.spec)
        assert isinstance(model, TaskModule)


@pytest.mark.parametrize("optimizer", options("model/optimizer"))
@pytest.mark.parametrize("scheduler", options("model/scheduler"))
def test_optimizers_and_schedulers_build(make_cfg, optimizer: str, scheduler: str) -> None:
    cfg = make_cfg(f"model/optimizer={optimizer}", f"model/scheduler={scheduler}")
    model = build_module(
        OmegaConf.to_container(cfg.model, resolve=True), instantiate(cfg.data).spec
    )
    configured = model.configure_optimizers()
    optimizer_obj = configured["optimizer"] if isinstance(configured, dict) else configured
    assert type(optimizer_obj).__name__.lower() == optimizer
    if scheduler != "none":
        assert configured["lr_scheduler"].get("monitor") == (
            cfg.monitor if scheduler == "plateau" else None
        )
