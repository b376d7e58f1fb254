"""A run forked from the warm interpreter (tests/warm.py) meets the same world as one started
fresh: argv, `__main__`, path, working directory, environment, signals, output and exit."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SESSION_ENV, warm_python

PROBE = """
import json, os, signal, sys
print(json.dumps({
    "argv": sys.argv, "name": __name__, "file": __file__, "path0": sys.path[0],
    "cwd": os.getcwd(), "env": os.environ.get("PROBE"), "stdin": sys.stdin.read(),
    "sigint": signal.getsignal(signal.SIGINT) is signal.default_int_handler,
    "sigterm": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
}), flush=True)
print("to stderr", file=sys.stderr)
ending = sys.argv[1]
if ending == "exception":
    raise RuntimeError("a bug")
if ending == "ctrl-c":
    raise KeyboardInterrupt
if ending == "signal":
    os.kill(os.getpid(), signal.SIGTERM)
sys.exit(int(ending))
"""


@pytest.mark.parametrize("ending", ["0", "3", "exception", "ctrl-c", "signal"])
def test_a_forked_run_sees_what_a_fresh_interpreter_sees(tmp_path: Path, ending: str) -> None:
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    env = SESSION_ENV | {"PROBE": "yes"}
    server = warm_python()
    if server is None:
        pytest.skip("COLD_START=1: no warm interpreter")
    warm = server.start([str(script), ending], tmp_path, env)
    warm_out, warm_err = warm.communicate(timeout=60)
    fresh = subprocess.run(
        [sys.executable, script, ending],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert warm.returncode == fresh.returncode
    assert json.loads(warm_out) == json.loads(fresh.stdout)
    assert warm_err.startswith("to stderr\n") and fresh.stderr.startswith("to stderr\n")
    assert warm_err.splitlines()[-1] == fresh.stderr.splitlines()[-1]


def test_the_server_outlives_a_run_nobody_waited_for(tmp_path: Path) -> None:
    server = warm_python()
    if server is None:
        pytest.skip("COLD_START=1: no warm interpreter")
    script = tmp_path / "nap.py"
    script.write_text("import time; time.sleep(0.3)")
    abandoned = server.start([str(script)], tmp_path, SESSION_ENV)
    abandoned.connection.close()  # as when a test fails before it waits
    time.sleep(1)  # the run ends; its exit status has nowhere to go
    assert server.start([str(script)], tmp_path, SESSION_ENV).wait(timeout=60) == 0
