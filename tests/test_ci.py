"""`.ci/run` sets the project up from nothing in a fresh clone and runs the test command."""

import os
import subprocess

import pytest

from src.engine.config import PROJECT_ROOT


@pytest.mark.slow
def test_ci_script_passes_in_a_fresh_clone(tmp_path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(PROJECT_ROOT), str(clone)], check=True)
    # The clone installs everything itself; a few quick tests stand in for the whole suite.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTEST"))}
    env["ARGS"] = "tests/test_data.py"
    result = subprocess.run(
        ["bash", ".ci/run"], cwd=clone, env=env, capture_output=True, text=True, timeout=1800
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "passed" in result.stdout
    assert (clone / ".venv" / "bin" / "python").exists()
