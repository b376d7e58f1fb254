"""Command-line runs without paying the imports each time: a server imports torch, Lightning and
Hydra once, then forks a child per run, which runs the script as `python <script> <args>` would.

Each child is a real process: its own pid, signals, exit status and file descriptors, its own
argv, environment, working directory and `__main__`, none of the project's modules imported
yet. What the server shares is only the third-party modules it imported, which is why it starts
with an environment that a run may change only where nothing is read at import time
(`forkable`). The server runs as `python -m tests.warm SOCKET`, single-threaded, as a fork
needs; the client is `WarmPython`.
"""

import contextlib
import gc
import importlib.machinery
import io
import json
import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import types
from pathlib import Path

PRELOADED = ["torch", "torchvision", "lightning.pytorch", "hydra", "omegaconf", "matplotlib.pyplot"]
IMPORT_TIME_ENV = ("PYTHON", "OMP_", "MKL_", "KMP_", "CUDA_", "TORCH", "PYTORCH", "LD_", "MPL")
RUN_TIME_ENV = {"PYTHONPATH", "PYTHONUNBUFFERED"}


def forkable(env: dict[str, str], server_env: dict[str, str]) -> bool:
    """Whether a run with `env` behaves in a forked child as in a fresh interpreter: it changes
    no variable that the preloaded modules or the interpreter read at start-up."""
    changed = {name for name in env | server_env if env.get(name) != server_env.get(name)}
    return not any(name.startswith(IMPORT_TIME_ENV) for name in changed - RUN_TIME_ENV)


# The server


def serve(path: str) -> None:
    """Import, then fork a child per request on the socket at `path` and send back its pid and,
    when it ends, its exit status; end when the client's end of stdin closes."""
    # imported as in a run: after Hydra has given the root logger its handlers (else Lightning
    # adds a handler of its own)
    logging.getLogger().addHandler(logging.NullHandler())
    for name in PRELOADED:
        __import__(name)
    logging.getLogger().handlers.clear()
    # the imported objects live as long as a run: its collector need not walk them, nor copy
    # their pages to mark them (Python's advice for a server that forks)
    gc.freeze()
    # a fork keeps only the forking thread (OpenBLAS's own pool, started by numpy, is rebuilt
    # by its fork handlers, as in every DataLoader worker)
    assert threading.active_count() == 1, "preload nothing that starts a Python thread"
    base_path = [entry for entry in sys.path[1:] if entry not in pythonpath(os.environ)]
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server.bind(path)
    server.listen()
    selector = selectors.DefaultSelector()
    selector.register(server, selectors.EVENT_READ)
    selector.register(sys.stdin, selectors.EVENT_READ)  # at its end, the client has gone
    while True:
        for key, _ in selector.select():
            if key.fileobj is sys.stdin:
                return
            if key.fileobj is server:
                connection, _ = server.accept()
                message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
                if len(fds) != 3:  # a client that went before it asked
                    for fd in fds:
                        os.close(fd)
                    connection.close()
                    continue
                request = json.loads(message)
                sys.stdout.flush(), sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    for pidfd in [key.fd for key in selector.get_map().values() if key.data]:
                        os.close(pidfd)
                    selector.close(), server.close(), connection.close()
                    become(request, fds, base_path)  # never returns: the run ends the process
                for fd in fds:
                    os.close(fd)
                with contextlib.suppress(OSError):  # the run goes on; its test has gone
                    connection.send(str(pid).encode())
                selector.register(os.pidfd_open(pid), selectors.EVENT_READ, (pid, connection))
            else:
                pid, connection = key.data
                selector.unregister(key.fileobj)
                os.close(key.fileobj)
                _, status = os.waitpid(pid, 0)
                with contextlib.suppress(OSError):  # a test that failed before it waited
                    connection.send(str(os.waitstatus_to_exitcode(status)).encode())
                connection.close()


def become(request: dict, fds: list[int], base_path: list[str]) -> None:
    """Turn this forked child into `python <script> <args>` run with the request's environment
    and working directory. The script's end, `SystemExit` or an exception it does not catch
    ends the process as it would end a fresh interpreter."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for signum in (signal.SIGTERM, signal.SIGCHLD, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    tempfile.tempdir = None  # found again from TMPDIR
    script = os.path.abspath(request["argv"][0])
    sys.argv = request["argv"]
    sys.path[:] = [os.path.dirname(script), *pythonpath(os.environ), *base_path]
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    sys.stdout = sys.__stdout__ = text_stream(1, line_buffering=False, write_through=unbuffered)
    sys.stderr = sys.__stderr__ = text_stream(2, line_buffering=True, write_through=unbuffered)
    main = types.ModuleType("__main__")
    main.__file__, main.__cached__, main.__spec__ = script, None, None
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", script)
    sys.modules["__main__"] = main
    exec(compile(Path(script).read_bytes(), script, "exec"), main.__dict__)
    sys.exit(0)


def text_stream(fd: int, line_buffering: bool, write_through: bool) -> io.TextIOWrapper:
    return io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(fd, "w", closefd=False)),
        encoding="utf-8",
        errors="backslashreplace" if fd == 2 else "strict",
        line_buffering=line_buffering,
        write_through=write_through,
    )


def pythonpath(env: os._Environ | dict[str, str]) -> list[str]:
    return [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]


# The client


class WarmPython:
    """Starts the server, and runs scripts through it: `start` gives a `subprocess.Popen`-like
    process whose output goes to files, readable at any time and once it has ended."""

    def __init__(self, directory: Path, cwd: Path, env: dict[str, str]) -> None:
        self.directory = directory
        self.socket_path = str(directory / "warm.sock")
        self.log = directory / "warm.log"
        self.env = env
        with open(self.log, "w") as log:
            self.server = subprocess.Popen(
                [sys.executable, "-m", "tests.warm", self.socket_path],
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.PIPE,  # the server ends with this process
            )
        deadline = time.monotonic() + 300
        while not os.path.exists(self.socket_path):
            assert self.server.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the warm server did not start"
            time.sleep(0.05)
        # anything printed while importing would show in a fresh interpreter's output, not here
        assert not self.log.read_text(), self.log.read_text()[-3000:]

    def start(
        self, argv: list[str], cwd: Path, env: dict[str, str], merge_stderr: bool = False
    ) -> "WarmProcess":
        return WarmProcess(self.socket_path, argv, cwd, env, merge_stderr)

    def close(self) -> None:
        self.server.stdin.close()
        self.server.wait()
        shutil.rmtree(self.directory)


class WarmProcess:
    """A forked run: `pid`, `poll`, `wait`, `communicate`, `send_signal`, `kill`, `returncode`,
    and `stdout`/`stderr` as text files read from the start (`stderr` is None when merged into
    `stdout`, in the order the run wrote them)."""

    def __init__(
        self, socket_path: str, argv: list[str], cwd: Path, env: dict[str, str], merge_stderr: bool
    ) -> None:
        self.args, self.returncode = argv, None
        self.stdout, stdout_fd = output_file()
        self.stderr, stderr_fd = (None, os.dup(stdout_fd)) if merge_stderr else output_file()
        stdin_fd = os.open(os.devnull, os.O_RDONLY)
        self.connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.connection.connect(socket_path)
        request = json.dumps({"argv": argv, "cwd": str(cwd), "env": env}).encode()
        socket.send_fds(self.connection, [request], [stdin_fd, stdout_fd, stderr_fd])
        for fd in (stdin_fd, stdout_fd, stderr_fd):
            os.close(fd)
        self.pid = int(self.connection.recv(64))

    def poll(self) -> int | None:
        if self.returncode is None:
            self.connection.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                self.returncode = int(self.connection.recv(64))
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.connection.settimeout(timeout)
            try:
                self.returncode = int(self.connection.recv(64))
            except TimeoutError:
                raise subprocess.TimeoutExpired(self.args, timeout) from None
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str, str | None]:
        self.wait(timeout)
        return self.stdout.read(), self.stderr and self.stderr.read()

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def output_file() -> tuple[io.TextIOWrapper, int]:
    """A nameless file: a reader for this process, an appending descriptor for the child."""
    fd, path = tempfile.mkstemp(prefix="warm-output-")
    os.close(fd)
    writer = os.open(path, os.O_WRONLY | os.O_APPEND)
    reader = open(path)  # noqa: SIM115 - read as the run goes, closed with the process object
    os.unlink(path)
    return reader, writer


if __name__ == "__main__":
    serve(sys.argv[1])
