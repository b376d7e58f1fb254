"""What a user brings works as the README's "Adding" section says: its worked examples, written
into a copy of the project (with no edit to the engine), train, stop on SIGTERM mid-epoch, resume,
and evaluate, predict and export."""

import csv
import json
import re
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from src.engine.config import PROJECT_ROOT
from tests.conftest import interrupted_run, run_script, write_image_folder


def readme_examples() -> dict[str, str]:
    """The code blocks of the README's "Adding" section, by the path their first line names."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("## Adding", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:python|yaml)\n# (\S+)\n(.*?)```", section, flags=re.S)
    return {path: code for path, code in blocks}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project with the README's examples written into it."""
    project = tmp_path_factory.mktemp("adding") / "project"
    for folder in ("src", "configs"):
        shutil.copytree(PROJECT_ROOT / folder, project / folder)
    for path, code in readme_examples().items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(code)
    return project


def test_the_readme_examples_are_the_ones_tested() -> None:
    assert sorted(readme_examples()) == [
        "configs/data/records.yaml",
        "configs/data/stripes.yaml",
        "configs/data/tokens.yaml",
        "configs/model/autoencoder.yaml",
        "configs/model/bag_of_embeddings.yaml",
        "configs/model/optimizer/lion.yaml",
        "configs/model/tiny_conv.yaml",
        "src/data/records.py",
        "src/data/stripes.py",
        "src/data/tokens.py",
        "src/models/autoencoder.py",
        "src/models/multilabel.py",
        "src/models/nets/bag_of_embeddings.py",
        "src/models/nets/tiny_conv.py",
        "src/optim/lion.py",
    ]


def test_a_network_a_datamodule_and_a_task_of_ones_own_train(project: Path, tmp_path) -> None:
    run_dir = tmp_path / "run"
    args = [
        "model=tiny_conv",
        "data=stripes",
        "model.optimizer.lr=0.01",
        f"hydra.run.dir={run_dir}",
    ]
    result = run_script("train", *args, project=project)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test/acc"] > 0.9  # two clear labels, 10 epochs


def write_points(folder: Path) -> Path:
    path = folder / "points.csv"
    path.write_text("x,y\n2,2\n-2,-2\n")
    return path


def write_ids(folder: Path) -> Path:
    path = folder / "ids.csv"
    rows = [[1, *range(2, 17)], list(range(30, 46))]  # token 1 occurs in the first only
    np.savetxt(path, np.array(rows), fmt="%d", delimiter=",")
    return path


def write_images(folder: Path) -> Path:
    images = write_image_folder(folder / "images", {"": 1}, size=(30, 30))
    for image in images.glob("*/*.png"):  # new images to predict: one folder, no classes
        image.rename(images / f"{image.parent.name}.png")
    return images


# what a user brings: its training arguments, a writer of inputs to predict, and the metric it
# reaches (a floor on accuracy, or a ceiling on the loss)
CASES = {
    "images read lazily by workers": (
        [
            *("data=image_folder", "data.root=IMAGES", "data.image_size=[16,16]", "model=cnn"),
            *("data.batch_size=4", "data.augment=true", "trainer.max_epochs=4"),
        ],
        write_images,
        ("test/acc", 0.9),
    ),
    "a torchvision model by name": (
        [
            *("data=fake_images", "data.num_samples=64", "data.batch_size=8"),
            *("model.net._target_=torchvision.models.mobilenet_v3_small", "trainer.max_epochs=2"),
        ],
        write_images,
        ("test/loss", 10.0),  # random labels: nothing to learn
    ),
    "token ids": (
        ["data=tokens", "model=bag_of_embeddings", "model.optimizer.lr=0.01"],
        write_ids,
        ("test/acc", 0.9),
    ),
    "dict batches from a standard DataLoader": (["data=records"], write_points, ("test/acc", 0.9)),
    "a LightningModule of ones own": (["model=autoencoder"], write_points, ("test/loss", 1.0)),
    "an optimizer from outside torch.optim": (
        ["model/optimizer=lion"],
        write_points,
        ("test/acc", 0.9),
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_what_a_user_brings_trains_resumes_and_serves(project: Path, tmp_path, case) -> None:
    args, write_inputs, (metric, bound) = CASES[case]
    images = write_image_folder(tmp_path / "data", {"train": 12, "val": 4})
    args = [arg.replace("IMAGES", str(images)) for arg in args]
    run_dir = tmp_path / "run"
    every_step = "callbacks.last_checkpoint.every_n_train_steps=2"
    stopped = interrupted_run(run_dir, signal.SIGTERM, *args, every_step, project=project)
    assert stopped.returncode == 1, stopped.stderr[-3000:]
    assert "Stopped by SIGTERM after checkpointing" in stopped.stderr
    resumed = run_script("train", f"resume={run_dir}", project=project)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics[metric] > bound if metric.endswith("acc") else metrics[metric] < bound
    evaluated = run_script("eval", f"ckpt_path={run_dir}", project=project)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert metric in evaluated.stdout
    inputs, output = write_inputs(tmp_path), tmp_path / "predictions.csv"
    predicted = run_script(
        "predict", f"ckpt_path={run_dir}", f"input={inputs}", f"output={output}", project=project
    )
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    with open(output) as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 2
    if case == "images read lazily by workers":  # the classes by name
        assert [row["prediction"] for row in rows] == ["cat", "dog"]
        assert {"prob_cat", "prob_dog"} <= rows[0].keys()
    exported = run_script("export", f"ckpt_path={run_dir}", project=project)
    assert exported.returncode == 0, exported.stderr[-3000:]
    dtype = "int64" if case == "token ids" else "float32"
    assert f"input: {dtype} (batch, " in exported.stdout


def test_a_module_says_what_it_lacks_for_each_command(tmp_path) -> None:
    """A LightningModule with a training step alone trains; eval, predict and export each say
    in one sentence what it lacks for them."""
    run_dir = tmp_path / "run"
    trust = "trusted=[src,torch.optim,tests]"
    args = ["model.module=tests.outside.Bare", "~model.net", "~model.optimizer", trust]
    no_validation = [
        "callbacks.early_stopping=null",
        "callbacks.model_checkpoint=null",
        "monitor=null",
    ]
    trained = run_script(
        "train",
        *args,
        *no_validation,
        "test=false",
        "trainer.max_epochs=1",
        f"hydra.run.dir={run_dir}",
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    points = write_points(tmp_path)
    lacks = {
        "eval": ([], "holds a Bare, which has no test_step; eval needs one: give Bare a test_step"),
        "predict": (
            [f"input={points}"],
            "holds a Bare, which has no forward; predict needs one: give Bare a forward",
        ),
        "export": ([], "holds a Bare with no network (net) and no forward; export needs one"),
    }
    for script, (more, message) in lacks.items():
        result = run_script(script, f"ckpt_path={run_dir}", trust, *more)
        assert result.returncode == 1, (script, result.stderr[-3000:])
        assert message in result.stderr and "Traceback" not in result.stderr, script


def test_a_streaming_datamodule_trains_and_resumes_its_epoch(tmp_path) -> None:
    """An iterable data set from a plain DataLoader, its spec read off a batch: the run says it
    cannot resume mid-epoch, checkpoints at epoch ends, and a resume after SIGTERM goes on."""
    project = tmp_path / "project"
    for folder in ("src", "configs"):
        shutil.copytree(PROJECT_ROOT / folder, project / folder)
    (project / "src" / "data" / "stream.py").write_text(STREAM)
    (project / "configs" / "data" / "stream.yaml").write_text(
        "_target_: src.data.stream.StreamDataModule\n"
    )
    run_dir = tmp_path / "run"
    args = [
        "data=stream",
        "trainer.max_epochs=4",
        "callbacks.last_checkpoint.every_n_train_steps=1",
    ]
    stopped = interrupted_run(run_dir, signal.SIGTERM, *args, project=project)
    assert stopped.returncode == 1, stopped.stderr[-3000:]
    assert "StreamDataModule's training loader (DataLoader) cannot save its place" in (
        stopped.stderr + stopped.stdout
    )
    resumed = run_script("train", f"resume={run_dir}", project=project)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((run_dir / "metrics.json").read_text())["test/acc"] > 0.9


STREAM = '''"""Points streamed from an iterable data set, 64 batches of 16 an epoch."""

import lightning as L
import torch
from torch.utils.data import DataLoader, IterableDataset


class Stream(IterableDataset):
    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed)
        for _ in range(1024):
            label = int(torch.randint(2, (), generator=generator))
            yield torch.randn(2, generator=generator) + 4 * label - 2, label


class StreamDataModule(L.LightningDataModule):
    num_classes = 2

    def train_dataloader(self) -> DataLoader:
        return DataLoader(Stream(0), batch_size=16)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(Stream(1), batch_size=16)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(Stream(2), batch_size=16)
'''
