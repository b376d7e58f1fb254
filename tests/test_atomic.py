"""Checkpoints and results are written whole or not at all: a full disk, an error or a kill at
any moment mid-write leaves the previous file and no temporary one."""

import errno
import os
import random
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import torch

from src.engine.atomic import atomic_write
from src.engine.checkpointing import AtomicCheckpointIO
from tests.conftest import start_script


def test_an_error_mid_write_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(path, "w") as file:
        file.write("half of the new")
        raise RuntimeError
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["result.json"]


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 1 MiB filesystem of its own (tmpfs), for a real full disk; skipped without the rights."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_leaves_the_last_checkpoint_whole(tiny_disk: Path) -> None:
    path = tiny_disk / "last.ckpt"
    checkpoint_io = AtomicCheckpointIO()
    checkpoint_io.save_checkpoint({"state_dict": {"w": torch.zeros(50_000)}}, path)  # 200 kB
    before = path.read_bytes()
    disk = os.statvfs(tiny_disk)
    (tiny_disk / "filler").write_bytes(bytes(disk.f_bavail * disk.f_frsize - 100_000))  # half one
    with pytest.raises(OSError) as error:
        checkpoint_io.save_checkpoint({"state_dict": {"w": torch.ones(50_000)}}, path)
    assert error.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert sorted(os.listdir(tiny_disk)) == ["filler", "last.ckpt"]


def test_non_finite_weights_are_not_written(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    with pytest.warns(UserWarning, match=f"{path} not saved: the weights hold NaN or infinite"):
        AtomicCheckpointIO().save_checkpoint(
            {"state_dict": {"w": torch.tensor([float("nan")])}}, path
        )
    assert not path.exists()


@pytest.mark.slow
def test_checkpoints_survive_sigkill_at_random_moments(tmp_path: Path) -> None:
    """Kill a run 20 times while it checkpoints every step, with $TMPDIR on another filesystem
    (/dev/shm, where Lightning's own writer would copy across): every checkpoint left loads, no
    temporary file is left anywhere, and the run resumes each time."""
    if not Path("/dev/shm").is_dir() or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no /dev/shm on another filesystem")
    temporary_dir = Path(tempfile.mkdtemp(dir="/dev/shm"))
    run_dir = tmp_path / "run"
    last = run_dir / "checkpoints" / "last.ckpt"
    env = {"TMPDIR": str(temporary_dir)}
    args = [
        "trainer.max_epochs=1000",
        "model.net.hidden_sizes=[512,512]",  # about 3 MB a checkpoint: writes take a while
        "callbacks.last_checkpoint.every_n_train_steps=1",
        "callbacks.rich_progress_bar=null",
        "extras.print_config=false",
    ]
    rng = random.Random(0)
    for kill in range(20):
        where = f"hydra.run.dir={run_dir}" if kill == 0 else f"resume={run_dir}"
        before = last.stat().st_mtime_ns if last.exists() else None
        process = start_script("train", *args, where, env=env)
        deadline = time.monotonic() + 120
        while not last.exists() or last.stat().st_mtime_ns == before:  # training again
            assert process.poll() is None, process.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint was written"
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 2.0))
        process.kill()
        process.communicate()
        for path in (run_dir / "checkpoints").glob("*.ckpt"):
            torch.load(path, weights_only=True)  # raises on a truncated file
        strays = [*run_dir.rglob("*.tmp"), *temporary_dir.iterdir()]
        assert not strays, f"after kill {kill}: {strays}"
