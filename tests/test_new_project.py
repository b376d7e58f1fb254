"""`scripts/new_project.py` turns a clone into an adopter's project: the examples not kept go
with their configs, code, tests, scripts and README rows, and what is left works."""

import subprocess
import sys
from pathlib import Path

import pytest

from src.engine.config import PROJECT_ROOT, group_options

NEW_PROJECT = PROJECT_ROOT / "scripts" / "new_project.py"


def clone(destination: Path) -> Path:
    """The project's files as git knows them (committed or not, ignored ones left out), committed
    in a fresh repository: a clean clone."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = PROJECT_ROOT / name.decode()
        if source.is_file():
            target = destination / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "template"]):
        subprocess.run([*git, *command], cwd=destination, check=True)
    return destination


def new_project(root: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, NEW_PROJECT, "--root", root, *args]
    return subprocess.run(command, capture_output=True, text=True)


@pytest.fixture(scope="module")
def points_mlp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = clone(tmp_path_factory.mktemp("points_mlp"))
    result = new_project(root, "my-points", "--keep-data", "points", "--keep-models", "mlp")
    assert result.returncode == 0, result.stderr
    return root


def names(root: Path, folder: str) -> set[str]:
    return {path.name for path in (root / folder).glob("*.*")}


def test_only_the_kept_examples_and_what_they_use_remain(points_mlp: Path) -> None:
    assert names(points_mlp, "configs/data") == {"points.yaml"}
    assert names(points_mlp, "configs/model") == {"mlp.yaml"}
    assert names(points_mlp, "configs/experiment") == {"points_mlp.yaml"}
    assert names(points_mlp, "configs/hparams_search") == {"points_optuna.yaml"}
    data = names(points_mlp, "src/data")
    assert {"points.py", "generated.py", "tensor_datamodule.py", "spec.py"} <= data
    assert not data & {"mnist.py", "cifar.py", "vision.py", "image_folder.py", "sine.py"}
    assert names(points_mlp, "src/models/nets") == {"__init__.py", "mlp.py", "network.py"}
    assert (points_mlp / "src" / "engine" / "building.py").is_file()  # the engine stays whole
    assert not (points_mlp / "scripts" / "benchmark.py").exists()  # it runs the seed CNN
    assert 'name = "my-points"' in (points_mlp / "pyproject.toml").read_text()
    # a project is made once: the script and its tests go last
    assert not (points_mlp / "scripts" / "new_project.py").exists()
    assert not (points_mlp / "tests" / "test_new_project.py").exists()


def test_no_test_or_readme_row_names_what_was_removed(points_mlp: Path) -> None:
    tests = "".join(path.read_text() for path in (points_mlp / "tests").glob("*.py"))
    for removed in ("data=mnist", "model=cnn", "experiment=mnist_cnn", "MNISTDataModule"):
        assert removed not in tests
    assert "def test_a_run_stopped_at_any_batch_resumes_exactly" in tests  # cases went alone
    readme = (points_mlp / "README.md").read_text()
    assert readme.startswith("# my-points\n")
    assert "| data \\ model | `mlp` |\n|---|---|\n| `points` | ✓ |\n" in readme
    assert "model=cnn" not in readme and "| `mnist` |" not in readme
    assert "new_project.py" not in readme


def test_the_new_project_trains_and_keeps_its_layers(points_mlp: Path) -> None:
    result = subprocess.run(
        [sys.executable, "src/train.py", "trainer.max_epochs=2", "logger=none"],
        cwd=points_mlp,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test/acc" in result.stdout
    layers = subprocess.run(
        [Path(sys.executable).with_name("lint-imports"), "--no-cache"],
        cwd=points_mlp,
        capture_output=True,
        text=True,
    )
    assert "2 kept, 0 broken" in layers.stdout, layers.stdout[-3000:]


def test_unknown_options_and_uncommitted_changes_are_refused(tmp_path: Path) -> None:
    root = clone(tmp_path / "clone")
    result = new_project(root, "x", "--keep-data", "points,mnst")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"new_project: --keep-data: no configs/data/mnst.yaml; choose from "
        f"{', '.join(group_options('data'))}"
    )
    result = new_project(root, "my project", "--keep-data", "points")
    assert result.returncode == 1
    assert "'my project' is not a project name" in result.stderr
    (root / "src" / "data" / "mine.py").write_text("")
    result = new_project(root, "x", "--keep-data", "points")
    assert result.returncode == 1
    assert "has uncommitted changes; commit or stash them first" in result.stderr
    assert (root / "configs" / "data" / "mnist.yaml").is_file()  # nothing removed


@pytest.mark.slow
@pytest.mark.parametrize(
    ("data", "model"), [("points", "mlp"), ("image_folder", "resnet18")], ids=str
)
def test_a_new_project_passes_its_own_fast_suite(data: str, model: str, tmp_path: Path) -> None:
    root = clone(tmp_path)
    result = new_project(root, "mine", "--keep-data", data, "--keep-models", model)
    assert result.returncode == 0, result.stderr
    suite = [sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider"]
    result = subprocess.run(suite, cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-5000:]
