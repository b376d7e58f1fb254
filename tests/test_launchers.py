"""Launchers: joblib jobs in parallel, each on a GPU of its own; SLURM through sbatch or submitit,
with run directories that survive a requeue and a trainer that requeues on SIGUSR1."""

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import submitit
import torch
from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.plugins.environments import SLURMEnvironment
from omegaconf import OmegaConf, open_dict, read_write

from src.engine import launch
from src.engine.checkpoints import continued_checkpoint, resumable_checkpoints
from tests.conftest import run_script, start_script
from tests.warm import WarmProcess

DATED_RUN = re.compile(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_[0-9a-f]{6}")


def test_joblib_multirun_runs_two_jobs_at_once(tmp_path: Path) -> None:
    args = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "model.optimizer.lr=1e-2,1e-3"]
    fast = ["trainer.max_epochs=1", "test=false", "callbacks.figures=null"]
    result = run_script("train", "-m", *args, *fast, f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    spans = []  # from the job's saved config to its last log line
    for job in ("0", "1"):
        assert (tmp_path / job / "checkpoints" / "last.ckpt").is_file()
        start = (tmp_path / job / ".hydra" / "config.yaml").stat().st_mtime
        spans.append((start, (tmp_path / job / "train.log").stat().st_mtime))
    (start0, end0), (start1, end1) = spans
    assert start0 < end1 and start1 < end0, spans


@pytest.fixture
def worker_gpus(monkeypatch: pytest.MonkeyPatch):
    """`launch.worker_gpu`'s memory of the GPU this process keeps; clearing it makes the next
    call act as another worker process (flock locks belong to each open file). Releases the
    locks at the end."""
    held: list[dict] = []

    def new_worker() -> None:
        held.append({})
        monkeypatch.setattr(launch, "_WORKER_GPUS", held[-1])

    yield new_worker
    for gpus in held:
        for _, lock in gpus.values():
            lock.release()


def test_each_joblib_worker_keeps_a_gpu_of_its_own(tmp_path: Path, worker_gpus) -> None:
    worker_gpus()
    assert launch.worker_gpu(tmp_path, 2, job_num=0) == 0
    assert launch.worker_gpu(tmp_path, 2, job_num=3) == 0  # its next job: the same GPU
    worker_gpus()
    assert launch.worker_gpu(tmp_path, 2, job_num=1) == 1
    worker_gpus()  # more workers than GPUs: a GPU shared, by job number
    assert launch.worker_gpu(tmp_path, 2, job_num=5) == 1


def test_trainer_devices_in_a_joblib_multirun_on_gpus(
    make_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, worker_gpus
) -> None:
    worker_gpus()
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert make_cfg("hydra/launcher=joblib").trainer.devices == 1  # not a multirun
    cfg = make_cfg("hydra/launcher=joblib")
    hydra_cfg = HydraConfig.get()
    with read_write(hydra_cfg), open_dict(hydra_cfg):
        hydra_cfg.mode, hydra_cfg.sweep.dir, hydra_cfg.job.num = "MULTIRUN", str(tmp_path), 2
    assert cfg.trainer.devices == [0]
    assert launch.job_devices("cpu") == 1
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert launch.job_devices("auto") == 1


def test_ddp_cannot_run_in_joblib_workers(make_cfg, tmp_path: Path) -> None:
    make_cfg("hydra/launcher=joblib", "trainer=ddp_sim")
    hydra_cfg = HydraConfig.get()
    with read_write(hydra_cfg), open_dict(hydra_cfg):
        hydra_cfg.mode = "MULTIRUN"
    with pytest.raises(ValueError, match="without hydra/launcher=joblib"):
        launch.ddp_rank_command(1)


def test_slurm_runs_are_named_by_their_job_so_a_requeued_job_finds_its_run(
    make_cfg, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run_dir_name(*overrides: str) -> str:
        make_cfg(*overrides)
        return Path(HydraConfig.get().run.dir).name

    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    assert run_dir_name("trainer=slurm") == "slurm-4242"
    assert DATED_RUN.fullmatch(run_dir_name("trainer=gpu"))  # one job may run several of these
    monkeypatch.delenv("SLURM_JOB_ID")
    assert DATED_RUN.fullmatch(run_dir_name("trainer=slurm"))


def fake_slurm_task(monkeypatch: pytest.MonkeyPatch, tasks_per_node: int, nodes: int = 1) -> None:
    """The environment srun gives task 0 of a job."""
    env = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "train", "SLURM_NODELIST": "127.0.0.1"}
    env |= {"SLURM_NTASKS": str(tasks_per_node * nodes), "SLURM_NNODES": str(nodes)}
    env |= {"SLURM_NTASKS_PER_NODE": str(tasks_per_node)}
    env |= {"SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_slurm_trainer_follows_the_allocation_and_requeues_on_sigusr1(
    make_cfg, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_slurm_task(monkeypatch, tasks_per_node=4, nodes=2)
    cfg = make_cfg("trainer=slurm")
    assert (cfg.trainer.devices, cfg.trainer.num_nodes, cfg.trainer.strategy) == (4, 2, "ddp")
    fake_slurm_task(monkeypatch, tasks_per_node=2)
    cfg = make_cfg("trainer=slurm", "trainer.accelerator=cpu", "logger=none")
    trainer = instantiate(cfg.trainer, logger=False)
    environment = trainer._accelerator_connector.cluster_environment
    assert isinstance(environment, SLURMEnvironment)
    assert environment.auto_requeue and environment.requeue_signal == signal.SIGUSR1
    assert (trainer.world_size, trainer.global_rank) == (2, 0)
    trainer._signal_connector.register_signal_handlers()
    try:
        handlers = signal.getsignal(signal.SIGUSR1).signal_handlers
        assert trainer._signal_connector._slurm_sigusr_handler_fn in handlers
    finally:
        trainer._signal_connector.teardown()


def test_slurm_launcher_submits_one_task_per_gpu_requeued_on_usr1(
    make_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "srun").write_text("#!/bin/sh\n")  # submitit looks for srun on the PATH
    (tmp_path / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    executors = []
    monkeypatch.setattr(
        submitit.AutoExecutor, "map_array", lambda ex, *_: executors.append(ex) or []
    )
    overrides = ["hydra.launcher.gpus_per_node=4", "hydra.launcher.nodes=2"]
    overrides += ["hydra/launcher=slurm", "trainer=slurm", f"hydra.sweep.dir={tmp_path}"]
    cfg = compose("train", overrides, return_hydra_config=True)  # as the launcher gets it
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)
    launcher.launch([["seed=1"]], initial_job_idx=0)
    script = executors[0]._executor._make_submission_file_text("python -m task", "uid")
    for line in ["--gpus-per-node=4", "--ntasks-per-node=4", "--nodes=2", "--signal=USR1@120"]:
        assert f"#SBATCH {line}\n" in script
    assert "#SBATCH --requeue\n" in script


def test_a_requeued_slurm_job_continues_from_its_run_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / "on_exception.ckpt").write_bytes(b"")
    assert continued_checkpoint(OmegaConf.create({"ckpt_path": None}), tmp_path) is None
    given = OmegaConf.create({"ckpt_path": "init.ckpt"})
    assert continued_checkpoint(given, tmp_path) == "init.ckpt"  # a first start
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert continued_checkpoint(given, tmp_path) == "last"
    assert continued_checkpoint(given, tmp_path / "new") == "init.ckpt"  # none yet
    time.sleep(0.01)
    (tmp_path / "hpc_ckpt_1.ckpt").write_bytes(b"")  # Lightning's, on the requeue signal
    assert resumable_checkpoints(tmp_path)[0] == tmp_path / "hpc_ckpt_1.ckpt"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(path: Path, process: WarmProcess | subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1]
        time.sleep(0.2)


@pytest.mark.slow
def test_sbatch_job_saves_requeues_on_sigusr1_and_resumes_in_its_run_directory(
    tmp_path: Path,
) -> None:
    """`srun python src/train.py trainer=slurm` as task 0 of a 1-task job, SLURM faked: the
    signal before the time limit, SIGTERM when requeued, then the job's restart."""
    bin_dir, logs = tmp_path / "bin", tmp_path / "logs"
    bin_dir.mkdir()
    requeued = tmp_path / "scontrol.args"
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" > {requeued}\n')
    (bin_dir / "scontrol").chmod(0o755)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "WANDB_MODE": "offline",
    }
    env |= {"SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "train", "SLURM_NODELIST": "127.0.0.1"}
    env |= {"SLURM_NTASKS": "1", "SLURM_NTASKS_PER_NODE": "1", "SLURM_NNODES": "1"}
    env |= {"SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0"}
    env |= {"MASTER_PORT": str(free_port())}
    train = ["trainer=slurm", "trainer.accelerator=cpu"]
    train += [f"paths.log_dir={logs}", "test=false", "callbacks.figures=null"]
    train += ["callbacks.early_stopping=null"]
    run_dir = logs / "train" / "runs" / "slurm-4242"

    def start(*args: str, **extra_env: str) -> WarmProcess | subprocess.Popen:
        return start_script("train", *train, *args, env=env | extra_env)

    first = start("trainer.max_epochs=1000")
    wait_for(run_dir / "checkpoints" / "last.ckpt", first)  # training, past epoch 0
    first.send_signal(signal.SIGUSR1)  # --signal=USR1@<seconds before the time limit>
    wait_for(requeued, first)
    assert (run_dir / "hpc_ckpt_1.ckpt").is_file()
    assert requeued.read_text().split() == ["requeue", "4242"]
    first.send_signal(signal.SIGTERM)  # scontrol requeue ends the job
    first.communicate(timeout=60)

    saved = torch.load(resumable_checkpoints(run_dir)[0], weights_only=True)
    steps_per_epoch = 50  # 1600 training points, batch size 32
    epochs = saved["epoch"] + 2
    second = start(f"trainer.max_epochs={epochs}", SLURM_RESTART_COUNT="1")
    _, err = second.communicate(timeout=180)
    assert second.returncode == 0, err[-3000:]
    assert [path.name for path in run_dir.parent.iterdir()] == ["slurm-4242"]
    restored = f"Restoring states from the checkpoint path at {run_dir}"
    assert restored in (run_dir / "train.log").read_text()
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == epochs * steps_per_epoch > saved["global_step"]
