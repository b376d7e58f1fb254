"""The layers hold: entry points over the run layer over the core, and no import cycles
(import-linter's contracts in pyproject.toml)."""

import subprocess
import sys
from pathlib import Path

import pytest

from src.run.config import PROJECT_ROOT


def test_imports_keep_the_layers_and_have_no_cycles() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [lint_imports, "--no-cache"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("entry_point", ["train", "eval", "predict", "export"])
def test_entry_points_import_no_torch_before_the_config_checks(entry_point: str) -> None:
    check = f"import sys, src.{entry_point}; assert 'torch' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", check], cwd=PROJECT_ROOT, capture_output=True)
    assert result.returncode == 0, result.stderr[-3000:]
