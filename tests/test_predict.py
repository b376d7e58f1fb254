"""Prediction: images normalised as in training, arrays of points and sequences, a safe CSV."""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image
from torchvision.datasets import MNIST

import src.predict
from src.data.base import TensorDataModule
from src.models import load_module
from src.predict import predict
from src.utils.config import ConfigError
from tests.conftest import run_script, write_mnist
from tests.test_eval import mnist_data, trained_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The best checkpoint of a quick run of each kind: images, points, sequences."""
    root = tmp_path_factory.mktemp("predict_runs")
    return {
        "mnist": trained_run(root / "mnist", "model=cnn", *mnist_data(write_mnist(root / "data"))),
        "points": trained_run(root / "points"),
        "sine": trained_run(root / "sine", "data=sine", "model=rnn", "data.num_samples=100"),
    }


def trained_datamodule(ckpt: Path) -> TensorDataModule:
    """The datamodule of the run that wrote `ckpt`, set up."""
    datamodule = instantiate(OmegaConf.load(ckpt.parents[1] / ".hydra" / "config.yaml").data)
    datamodule.setup()
    return datamodule


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_predict_cli_normalises_images_as_in_training(runs, tmp_path: Path) -> None:
    datamodule = trained_datamodule(runs["mnist"])
    images, _ = next(iter(datamodule.test_dataloader()))  # normalised by the datamodule
    folder = tmp_path / "images"
    folder.mkdir()
    raw = MNIST(str(datamodule.data_dir), train=False).data[:5]  # the same files, as uint8
    for i, image in enumerate(raw):
        Image.fromarray(image.numpy()).save(folder / f"digit_{i}.png")
    Image.new("RGB", (40, 30), (200, 10, 10)).save(folder / "wide_colour.jpg")  # grey, 28x28
    result = run_script(
        "predict",
        f"ckpt_path={runs['mnist']}",
        f"input={folder}",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Predicted 6 inputs" in result.stdout
    rows = read_csv(tmp_path / "run" / "predictions.csv")
    assert [row["input"] for row in rows] == [
        *(f"digit_{i}.png" for i in range(5)),
        "wide_colour.jpg",
    ]
    probabilities = torch.tensor([[float(row[f"prob_{k}"]) for k in range(10)] for row in rows])
    assert probabilities.sum(1) == pytest.approx(torch.ones(6), abs=1e-5)
    assert [int(row["prediction"]) for row in rows] == probabilities.argmax(1).tolist()
    with torch.inference_mode():
        expected = load_module(runs["mnist"]).eval()(images[:5]).softmax(1)
    assert probabilities[:5] == pytest.approx(expected, abs=1e-5)


def predict_in_process(make_cfg, ckpt: Path, source: Path, *args: str) -> list[dict[str, str]]:
    """Run `predict` on `source` and read its CSV back."""
    return read_csv(
        predict(make_cfg(f"ckpt_path={ckpt}", f"input={source}", *args, config_name="predict"))
    )


def test_predict_reads_points_from_csv_and_npy(make_cfg, runs, tmp_path: Path) -> None:
    points = np.array([[2.0, 2.0], [-2.0, -2.0], [3.0, 1.0]], dtype=np.float32)
    np.savetxt(tmp_path / "points.csv", points, delimiter=",", header="x,y", comments="")
    np.save(tmp_path / "points.npy", points)
    from_csv = predict_in_process(make_cfg, runs["points"], tmp_path / "points.csv")
    from_npy = predict_in_process(make_cfg, runs["points"], tmp_path / "points.npy")
    assert from_csv == from_npy
    assert [row["input"] for row in from_csv] == ["0", "1", "2"]
    assert [row["prediction"] for row in from_csv] == ["0", "1", "0"]  # cloud 0 at (2, 2)
    assert float(from_csv[0]["prob_0"]) > 0.9


def test_predict_reads_sequences_flat_or_shaped(make_cfg, runs, tmp_path: Path) -> None:
    inputs = trained_datamodule(runs["sine"]).splits["test"][0][:4]  # (4, 50, 1)
    np.save(tmp_path / "shaped.npy", inputs.numpy())
    np.savetxt(tmp_path / "flat.csv", inputs.squeeze(-1).numpy(), delimiter=",")
    shaped = predict_in_process(make_cfg, runs["sine"], tmp_path / "shaped.npy")
    flat = predict_in_process(make_cfg, runs["sine"], tmp_path / "flat.csv")
    assert list(shaped[0]) == ["input", *(f"prediction_{i}" for i in range(50))]
    values = torch.tensor([[float(v) for v in list(row.values())[1:]] for row in shaped])
    with torch.inference_mode():
        expected = load_module(runs["sine"]).eval()(inputs).squeeze(-1)
    assert values == pytest.approx(expected, abs=1e-6)
    assert flat == shaped  # the CSV's text round-trips float32 exactly


def write_bad_input(tmp_path: Path, name: str) -> Path:
    """One bad input of each kind, under `tmp_path`."""
    path = tmp_path / name
    if name == "three_columns.csv":
        np.savetxt(path, np.zeros((4, 3)), delimiter=",")
    elif name == "words.csv":
        path.write_text("x,y\n1,2\nthree,4\n")
    elif name == "short_sequences.npy":
        np.save(path, np.zeros((4, 49), dtype=np.float32))
    elif name == "notes.txt":
        path.write_text("2,2\n")
    elif name.endswith("folder"):
        path.mkdir()
        if name == "broken_image_folder":
            (path / "broken.png").write_bytes(b"not a png")
    return path


BAD_INPUTS = {
    "wrong width": (
        "points",
        "three_columns.csv",
        r"has shape \(4, 3\), but the model takes samples of shape \(2,\)",
    ),
    "not numbers": ("points", "words.csv", "is not a CSV of numbers"),
    "short sequences": (
        "sine",
        "short_sequences.npy",
        r"samples of shape \(50, 1\); give an array of shape \(N, 50, 1\)",
    ),
    "folder for points": (
        "points",
        "empty_folder",
        r"the model takes vector inputs of shape \(2,\); give a .npy or .csv file",
    ),
    "file for images": (
        "mnist",
        "three_columns.csv",
        r"the model takes image inputs of shape \(1, 28, 28\); give a folder of PNG/JPG",
    ),
    "no images": ("mnist", "empty_folder", "holds no .png/.jpg/.jpeg images"),
    "broken image": ("mnist", "broken_image_folder", "broken.png is not a readable image"),
    "unknown suffix": ("points", "notes.txt", ".txt files are not read"),
    "missing": ("points", "nowhere.csv", "no such file or folder"),
}


@pytest.mark.parametrize(("run", "name", "message"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_inputs_fail_with_the_expected_shape_and_write_nothing(
    make_cfg, runs, tmp_path: Path, run: str, name: str, message: str
) -> None:
    source = write_bad_input(tmp_path, name)
    with pytest.raises(ConfigError, match=message):
        predict_in_process(make_cfg, runs[run], source)
    assert not (tmp_path / "predictions.csv").exists()


def test_predict_cli_refuses_an_unreadable_input_before_loading_anything(
    runs, tmp_path: Path
) -> None:
    source = write_bad_input(tmp_path, "notes.txt")
    args = [f"ckpt_path={runs['points']}", f"input={source}", f"hydra.run.dir={tmp_path / 'run'}"]
    result = run_script("predict", *args, timeout=60)
    assert result.returncode != 0
    assert "notes.txt: .txt files are not read; give a folder of PNG/JPG images" in result.stderr
    assert not (tmp_path / "run" / "predictions.csv").exists()


def test_a_failed_write_leaves_the_previous_csv_alone(
    make_cfg, runs, tmp_path: Path, monkeypatch
) -> None:
    np.save(tmp_path / "points.npy", np.zeros((3, 2), dtype=np.float32))
    output = tmp_path / "out.csv"
    output.write_text("previous results\n")

    def half_a_table(*args):
        yield ["input", "prediction"]
        raise OSError("disk full")

    monkeypatch.setattr(src.predict, "prediction_table", half_a_table)
    with pytest.raises(OSError, match="disk full"):
        predict_in_process(make_cfg, runs["points"], tmp_path / "points.npy", f"output={output}")
    assert output.read_text() == "previous results\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.csv", "points.npy"]
