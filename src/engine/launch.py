"""Where a run writes and which devices it takes when it runs in parallel: joblib, DDP, SLURM.

- `${run_name:<trainer option>}` names run directories: `slurm-<job id>` for `trainer=slurm` in
  a SLURM job, so all its tasks and the job again after a requeue share one directory.
- `${job_devices:<accelerator>}` gives each worker of a joblib multirun a GPU of its own.
- `relaunch_ddp_ranks_as_this_job` makes the DDP ranks Lightning starts run this Hydra job.
- `EndDistributedJob` lets the next job of a multirun start DDP afresh in the same process.
- `PARENT_WATCH` stops a joblib worker's job, and the worker, when the sweep's process dies.
"""

import logging
import os
import secrets
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from filelock import FileLock, Timeout
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from src.errors import ConfigError

log = logging.getLogger(__name__)

# GPU and lock this process holds, per sweep directory
_WORKER_GPUS: dict[Path, tuple[int, FileLock]] = {}
# what Lightning sets in its own environment when it starts the DDP ranks of a job
RENDEZVOUS = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def run_name(trainer: str | None = None) -> str:
    """A new run directory's name: `slurm-<job id>` for `trainer=slurm` inside a SLURM job, else
    `<date>_<time>_<random suffix>`."""
    job_id = os.environ.get("SLURM_JOB_ID")
    if trainer == "slurm" and job_id:
        return f"slurm-{job_id}"
    return f"{datetime.now():%Y-%m-%d_%H-%M-%S}_{secrets.token_hex(3)}"


def job_devices(accelerator: str = "auto") -> int | list[int]:
    """One device: in a joblib multirun on a CUDA machine `[gpu]`, the GPU this worker process
    keeps for the sweep (`worker_gpu`), so parallel jobs train on different GPUs."""
    if accelerator not in ("auto", "gpu", "cuda") or not in_joblib_sweep():
        return 1
    import torch

    if not (count := torch.cuda.device_count()):
        return 1
    hydra_cfg = HydraConfig.get()
    return [worker_gpu(Path(hydra_cfg.sweep.dir), count, hydra_cfg.job.num)]


def worker_gpu(lock_dir: Path, count: int, job_num: int) -> int:
    """The first of `count` GPUs that no other process has locked (`<lock_dir>/gpu<n>.lock`),
    kept until this process exits: joblib runs job after job in the same worker processes. With
    more workers than GPUs, GPU `job_num % count`, shared."""
    if lock_dir not in _WORKER_GPUS:
        for gpu in range(count):
            lock = FileLock(lock_dir / f"gpu{gpu}.lock", timeout=0)
            try:
                lock.acquire()
            except Timeout:
                continue
            _WORKER_GPUS[lock_dir] = gpu, lock
            break
        else:
            log.warning(f"More parallel jobs than the {count} GPUs: job {job_num} shares a GPU")
            return job_num % count
    return _WORKER_GPUS[lock_dir][0]


def in_joblib_sweep() -> bool:
    """Whether this job runs in a multirun launched by Hydra's joblib launcher (jobs at once)."""
    if not HydraConfig.initialized():
        return False
    hydra_cfg = HydraConfig.get()
    return hydra_cfg.mode == RunMode.MULTIRUN and "Joblib" in hydra_cfg.launcher._target_


def ddp_rank_command(local_rank: int) -> tuple[list[str], str]:
    """The command that starts DDP rank `local_rank` of this Hydra job, and its directory: this
    script with this job's config flags and overrides, in this job's directory, saving no config.

    Lightning's own repeats the command line, which in a multirun re-runs the whole sweep in
    every rank and in another sweep directory.
    """
    from hydra._internal.utils import get_args_parser
    from hydra.utils import get_original_cwd, to_absolute_path

    import __main__

    if in_joblib_sweep():
        raise ConfigError(
            "trainer.strategy=ddp re-runs the script for each device, which joblib workers "
            "cannot: run DDP sweeps without hydra/launcher=joblib, or with hydra/launcher=slurm"
        )
    hydra_cfg = HydraConfig.get()
    if __main__.__spec__ is None:
        script = [sys.executable, to_absolute_path(sys.argv[0])]
    else:
        script = [sys.executable, "-m", __main__.__spec__.name]
    args = get_args_parser().parse_args(sys.argv[1:])
    flags = [
        f"--{name.replace('_', '-')}={value}"
        for name in ("config_path", "config_name", "config_dir")
        if (value := getattr(args, name))
    ]
    hydra_overrides = [o for o in hydra_cfg.overrides.hydra if not o.startswith("hydra.mode=")]
    command = [
        *script,
        *flags,
        *hydra_cfg.overrides.task,
        *hydra_overrides,
        f'hydra.run.dir="{hydra_cfg.runtime.output_dir}"',
        f"hydra.job.name=train_ddp_process_{local_rank}",
        "hydra.output_subdir=null",
    ]
    return command, get_original_cwd()


def relaunch_ddp_ranks_as_this_job() -> None:
    """Have Lightning start the DDP ranks it launches itself with `ddp_rank_command`."""
    from lightning.pytorch.strategies.launchers import subprocess_script

    subprocess_script._hydra_subprocess_cmd = ddp_rank_command


class ParentWatch:
    """In a joblib worker: when the process that launched the sweep dies, SIGKILL included, stop
    the job running here as SIGTERM does (Lightning checkpoints; the job writes how to resume it
    in its error file), start no other, and exit; else the worker runs on alone, holding its
    job's directory. `-m resume=<sweep dir>` then finishes the sweep."""

    def __init__(self, poll_s: float = 0.5, grace_s: float = 300) -> None:
        self.poll_s, self.grace_s = poll_s, grace_s
        self.parent: int | None = None
        self.job_dir: Path | None = None  # the job running in this worker, if any

    def job_started(self, job_dir: Path) -> None:
        self.job_dir = job_dir
        if self.parent is None:
            self.parent = os.getppid()
            threading.Thread(target=self._watch, name="parent-watch", daemon=True).start()

    def job_ended(self) -> None:
        self.job_dir = None

    def _watch(self) -> None:
        while os.getppid() == self.parent:
            time.sleep(self.poll_s)
        if job_dir := self.job_dir:
            log.warning("The sweep's process has ended: stopping this job and this worker")
            signalled, deadline = time.time(), time.monotonic() + self.grace_s
            os.kill(os.getpid(), signal.SIGTERM)
            while self.job_dir and not stop_recorded(job_dir, signalled):
                if time.monotonic() > deadline:
                    break
                time.sleep(self.poll_s)
            time.sleep(self.poll_s)  # for the job to close its error file
        os._exit(1)


def stop_recorded(job_dir: Path, since: float) -> bool:
    """Whether the job wrote its error file (how it stopped) at or after `since`."""
    try:
        return (job_dir / "error.txt").stat().st_mtime >= since
    except FileNotFoundError:
        return False


PARENT_WATCH = ParentWatch()
