"""Tuning for the machine a run is on, each setting with why: how many threads torch's CPU
kernels take (`thread_count`), no NVML probe per step without a GPU
(`skip_nvml_probes_without_gpu`), no collector walk at exit (`skip_collection_at_exit`)."""

import atexit
import gc
import logging
import os
import time

from hydra.core.hydra_config import HydraConfig

from src.engine.launch import in_joblib_sweep

log = logging.getLogger(__name__)


def thread_count(setting: int | str) -> int:
    """The threads torch's CPU kernels may use: `setting`, or for `auto` the cores this process may
    use that are idle now, shared among the jobs a joblib sweep runs at once.

    torch takes every core by default; when another process keeps one busy, each parallel kernel
    waits for its slowest thread, and training gets several times slower (2 cores, one busy: the
    default run 3x slower with 2 threads than with 1).
    """
    if setting != "auto":
        return int(setting)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    jobs = 1
    if in_joblib_sweep():
        jobs = HydraConfig.get().launcher.get("n_jobs") or 1
        jobs = cores if jobs < 0 else jobs
    idle = min(idle_cores(), cores)
    threads = max(1, int(idle + 0.25) // jobs)
    log.info(f"Threads: {threads} ({cores} cores, {idle:.1f} idle, {jobs} job(s) at a time)")
    return threads


def idle_cores(window: float = 0.1) -> float:
    """How many of the machine's cores were idle over the last `window` seconds (from Linux's
    /proc/stat); every core where the system does not say."""

    def cpu_times() -> tuple[int, int]:
        with open("/proc/stat") as file:
            values = [int(v) for v in file.readline().split()[1:9]]
        return values[3] + values[4], sum(values)  # idle + iowait, all

    cores = os.cpu_count() or 1
    try:
        idle_before, total_before = cpu_times()
        time.sleep(window)
        idle_after, total_after = cpu_times()
    except (OSError, ValueError):
        return float(cores)
    return cores * (idle_after - idle_before) / max(total_after - total_before, 1)


def skip_nvml_probes_without_gpu() -> None:
    """On a machine without a CUDA GPU, answer CUDA availability from the CUDA runtime (counted
    once) instead of NVML.

    Lightning asks torch to check through NVML (`PYTORCH_NVML_BASED_CUDA_CHECK=1`), which never
    initialises CUDA before a fork; but without an NVIDIA driver torch re-probes NVML on every
    call, and Adam calls it on every step (about 0.1 ms each here). Without a GPU there is no CUDA
    state for a fork to inherit.
    """
    import torch

    if not torch.cuda.is_available():
        os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)


def skip_collection_at_exit() -> None:
    """Freeze the objects left at exit, after every other exit handler has run (W&B's, the
    loggers'): the interpreter then frees them without the collector's walk over the ~400,000
    that torch and Lightning create, which takes about 2 s on 2 cores."""
    atexit.register(gc.freeze)  # exit handlers run last-registered first: this one runs last
