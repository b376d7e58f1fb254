"""The README's worked examples of adding a network, a datamodule and a task are all it takes:
written into a copy of the project, they train."""

import json
import re
import shutil
from pathlib import Path

from src.run.config import PROJECT_ROOT
from tests.conftest import run_script


def readme_examples() -> dict[str, str]:
    """The code blocks of the README's "Adding" section, by the path their first line names."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("## Adding", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:python|yaml)\n# (\S+)\n(.*?)```", section, flags=re.S)
    return {path: code for path, code in blocks}


def test_the_readme_examples_add_a_network_a_datamodule_and_a_task(tmp_path: Path) -> None:
    examples = readme_examples()
    assert sorted(examples) == [
        "configs/data/stripes.yaml",
        "configs/model/tiny_conv.yaml",
        "src/data/stripes.py",
        "src/models/multilabel.py",
        "src/models/nets/tiny_conv.py",
    ]
    project = tmp_path / "project"
    for folder in ("src", "configs"):
        shutil.copytree(PROJECT_ROOT / folder, project / folder)
    for path, code in examples.items():
        (project / path).write_text(code)
    run_dir = tmp_path / "run"
    args = ["model=tiny_conv", "data=stripes", f"hydra.run.dir={run_dir}"]
    result = run_script("train", *args, project=project)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test/acc"] > 0.9  # two clear labels, 10 epochs
