"""Files written whole or not at all: readers, and a process killed mid-write, never see half."""

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb", **open_kwargs) -> Iterator[IO]:
    """A file to write `path`'s new contents to, which replace the old ones only once the block
    ends without an error, flushed to disk: a crash, a kill or a full disk leaves the old file.

    The new contents go to a temporary file in `path`'s own directory (a rename is atomic only
    within one filesystem), unnamed where Linux allows (`O_TMPFILE`), so even a process killed
    mid-write leaves nothing behind; it gets a name only for the rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = _temporary_file(path)
    try:
        with open(fd, mode, **open_kwargs) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
            if temporary is None:  # name the unnamed file, for the rename
                temporary = _hidden_name(path)
                _link(file.fileno(), temporary)
        os.replace(temporary, path)
        _fsync_directory(path.parent)
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)


def _temporary_file(path: Path) -> tuple[int, Path | None]:
    """A new file in `path`'s directory, open for writing: unnamed (None) where the system and
    filesystem support it, else a hidden name beside `path`."""
    if hasattr(os, "O_TMPFILE") and Path("/proc/self/fd").is_dir():
        try:
            return os.open(path.parent, os.O_TMPFILE | os.O_WRONLY, 0o666), None
        except OSError:  # a filesystem without O_TMPFILE
            pass
    temporary = _hidden_name(path)
    return os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666), temporary


def _hidden_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


def _link(fd: int, name: Path) -> None:
    """Give the unnamed file open as `fd` the name `name` (linkat through /proc/self/fd)."""
    proc = os.open("/proc/self/fd", os.O_RDONLY)
    try:
        os.link(str(fd), name, src_dir_fd=proc, follow_symlinks=True)
    finally:
        os.close(proc)


def _fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
