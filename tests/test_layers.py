"""The layers hold: entry points over the engine over the user's code, and no import cycles
(import-linter's contracts in pyproject.toml)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from src.engine.config import PROJECT_ROOT


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    command = [Path(sys.executable).with_name("lint-imports"), "--no-cache"]
    return subprocess.run(command, cwd=root, capture_output=True, text=True)


def test_imports_keep_the_layers_and_have_no_cycles() -> None:
    result = lint_imports(PROJECT_ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "2 kept, 0 broken" in result.stdout


def test_a_datamodule_that_imports_the_engine_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(PROJECT_ROOT / "src", tmp_path / "src")
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path)
    points = tmp_path / "src" / "data" / "points.py"
    points.write_text(f"from src.engine.atomic import atomic_write\n{points.read_text()}")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "src.data is not allowed to import src.engine" in result.stdout


@pytest.mark.parametrize("entry_point", ["train", "eval", "predict", "export"])
def test_entry_points_import_no_torch_before_the_config_checks(entry_point: str) -> None:
    check = f"import sys, src.{entry_point}; assert 'torch' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", check], cwd=PROJECT_ROOT, capture_output=True)
    assert result.returncode == 0, result.stderr[-3000:]
