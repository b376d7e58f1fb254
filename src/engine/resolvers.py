"""The resolvers the configs use: `${project_root:}`, `${run_id:}` (a short random suffix),
`${wandb_offline:}`, `${sweep_name:}`, `${signal:<name>}`, and `${run_name:}` and
`${job_devices:}` (`src/engine/launch.py`)."""

import netrc
import os
import secrets
import signal
from pathlib import Path
from urllib.parse import urlparse

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf

from src.engine.config import PROJECT_ROOT
from src.engine.launch import job_devices, run_name


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT), replace=True)
    OmegaConf.register_new_resolver(
        "run_id", lambda: secrets.token_hex(3), use_cache=True, replace=True
    )
    OmegaConf.register_new_resolver("wandb_offline", wandb_offline, replace=True)
    OmegaConf.register_new_resolver("sweep_name", sweep_name, replace=True)
    OmegaConf.register_new_resolver("signal", signal_number, replace=True)
    OmegaConf.register_new_resolver("run_name", run_name, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("job_devices", job_devices, replace=True)


def wandb_offline() -> bool:
    """True unless W&B may reach its server: its mode (`WANDB_MODE`) is online, or there is an API
    key for the server it is set to (`WANDB_BASE_URL`, a self-hosted one too) in `WANDB_API_KEY`
    or in ~/.netrc, where `wandb login` stores it."""
    if mode := os.environ.get("WANDB_MODE"):
        return mode in ("offline", "dryrun", "disabled")
    if os.environ.get("WANDB_API_KEY"):
        return False
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc().authenticators(host) is None
    except (FileNotFoundError, netrc.NetrcParseError):
        return True


def sweep_name() -> str | None:
    """The multirun directory's name, which groups its jobs (W&B group); None in a single run."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return Path(HydraConfig.get().sweep.dir).name


def signal_number(name: str) -> int:
    """The number of the signal `name` (SIGUSR1) on this system."""
    return int(signal.Signals[name])
