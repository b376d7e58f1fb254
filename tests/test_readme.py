"""The README is kept true: its table of which models train on which data, the tests it names."""

import re

from hydra.utils import get_class, instantiate

from src.engine.config import PROJECT_ROOT, group_options
from tests.conftest import readme_table, write_image_folder


def test_readme_compatibility_table_matches_the_code(make_cfg, tmp_path) -> None:
    folder = write_image_folder(tmp_path / "images", classes=("bird", "cat", "dog"))
    needs = {"image_folder": [f"data.root={folder}"]}
    specs = {
        data: instantiate(make_cfg(f"data={data}", *needs.get(data, [])).data).spec
        for data in group_options("data")
    }
    networks = {
        m: get_class(make_cfg(f"model={m}").model.net._target_) for m in group_options("model")
    }
    actual = {
        (data, model): network.incompatibility(spec) is None
        for data, spec in specs.items()
        for model, network in networks.items()
    }
    assert readme_table() == actual


def test_every_test_the_readme_names_exists() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    named = set(re.findall(r"`(test_\w+)`", readme)) - {"test_step", "test_batch"}  # not tests
    defined = {
        name
        for path in (PROJECT_ROOT / "tests").glob("test_*.py")
        for name in re.findall(r"^def (test_\w+)", path.read_text(), re.MULTILINE)
    }
    assert named and not named - defined
