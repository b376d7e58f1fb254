"""Prediction: images normalised as in training, arrays of points and sequences, a safe CSV."""

import csv
import io
import os
import re
import signal
import socket
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image
from torchvision.datasets import MNIST

import src.engine.predictions
from src.data.spec import DataSpec
from src.data.tensor_datamodule import TensorDataModule
from src.engine.inputs import read_inputs
from src.engine.loading import load_module
from src.errors import ConfigError
from src.predict import check_input, predict
from tests.conftest import TRUSTED, mnist_data, run_script, trained_run, write_mnist


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The best checkpoint of a quick run of each kind: images, points, sequences."""
    root = tmp_path_factory.mktemp("predict_runs")
    return {
        "mnist": trained_run(root / "mnist", "model=cnn", *mnist_data(write_mnist(root / "data"))),
        "points": trained_run(root / "points", "model.optimizer.lr=0.01"),
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
        expected = load_module(runs["mnist"], TRUSTED)[0].eval()(images[:5]).softmax(1)
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
    # Excel's "CSV UTF-8": a byte-order mark, here with no header
    (tmp_path / "excel.csv").write_text("2,2\n-2,-2\n3,1\n", encoding="utf-8-sig")
    from_excel = predict_in_process(make_cfg, runs["points"], tmp_path / "excel.csv")
    assert from_csv == from_npy == from_excel
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
        expected = load_module(runs["sine"], TRUSTED)[0].eval()(inputs).squeeze(-1)
    assert values == pytest.approx(expected, abs=1e-6)
    assert flat == shaped  # the CSV's text round-trips float32 exactly
    np.save(tmp_path / "one.npy", inputs[0].flatten().numpy())  # one sequence, 1-D
    (one,) = predict_in_process(make_cfg, runs["sine"], tmp_path / "one.npy")
    assert [float(v) for v in list(one.values())[1:]] == pytest.approx(expected[0], abs=1e-6)


def write_bad_input(tmp_path: Path, name: str) -> Path:
    """One bad input of each kind, under `tmp_path`."""
    path = tmp_path / name
    if name == "three_columns.csv":
        np.savetxt(path, np.zeros((4, 3)), delimiter=",")
    elif name == "words.csv":
        path.write_text("x,y\n1,2\nthree,4\n")
    elif name == "short_first_row.csv":  # not a header: it holds a number
        path.write_text("2\n-2,-2\n3,1\n")
    elif name == "complex.npy":
        np.save(path, np.ones((3, 2), dtype=complex))
    elif name == "empty.csv":
        path.write_text("x,y\n")
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
    "short first row": ("points", "short_first_row.csv", "number of columns changed from 1 to 2"),
    "no samples": ("points", "empty.csv", "holds no samples; give one sample per row"),
    "complex numbers": ("points", "complex.npy", "holds complex128 values; give real numbers"),
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
    output.write_text("input,prediction\nprevious,results\n")  # an earlier run's table

    class FullDisk:  # a csv.writer that runs out of room after the header
        def __init__(self, file) -> None:
            self.file = file

        def writerows(self, rows) -> None:
            self.file.write("input,prediction\n")
            raise OSError("disk full")

    monkeypatch.setattr(src.engine.predictions.csv, "writer", FullDisk)
    with pytest.raises(OSError, match="disk full"):
        predict_in_process(make_cfg, runs["points"], tmp_path / "points.npy", f"output={output}")
    assert output.read_text() == "input,prediction\nprevious,results\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.csv", "points.npy"]


POINTS = DataSpec("classification", "vector", (2,), 2)
DIGITS = DataSpec("classification", "image", (1, 28, 28), 10)


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail, instead of hanging, when the block still runs after `seconds` (a blocked open)."""

    def fail(*_) -> None:
        pytest.fail(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("name", ["x.npy", "x.csv"])
def test_a_fifo_input_is_refused_at_once(tmp_path: Path, name: str) -> None:
    fifo = tmp_path / name
    os.mkfifo(fifo)
    message = re.escape(f"input={fifo} is not a regular file; give a folder of images")
    with deadline(10), pytest.raises(ConfigError, match=message):
        check_input(fifo)


def test_image_folders_skip_sub_folders_and_refuse_fifos_and_sockets(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("L", (28, 28), 255).save(folder / "digit.png")
    (folder / "not_an_image.png").mkdir()
    batch, names = read_inputs(folder, DIGITS)
    assert names == ["digit.png"]
    assert batch.shape == (1, 1, 28, 28)
    os.mkfifo(folder / "pipe.png")
    with deadline(10), pytest.raises(ConfigError, match=r"images: pipe\.png is not a regular file"):
        read_inputs(folder, DIGITS)
    (folder / "pipe.png").unlink()
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(folder / "socket.png"))
        with pytest.raises(ConfigError, match=r"images: socket\.png is not a regular file"):
            read_inputs(folder, DIGITS)


def png_declaring(width: int, height: int) -> bytes:
    """A real 1x1 grey PNG whose IHDR chunk (and its CRC) is rewritten to declare width x height."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)  # after the signature, length and b"IHDR"
    data[29:33] = struct.pack(">I", zlib.crc32(data[12:29]))  # over b"IHDR" and its 13 bytes
    return bytes(data)


@pytest.mark.parametrize("side", [10_000, 20_000], ids=["over the limit", "over twice the limit"])
def test_images_over_pils_pixel_limit_are_refused(tmp_path: Path, side: int) -> None:
    limit = Image.MAX_IMAGE_PIXELS
    assert limit < side * side  # PIL warns above the limit and raises above twice it
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "bomb.png").write_bytes(png_declaring(side, side))
    message = f"images: bomb.png declares more than PIL's limit of {limit} pixels"
    with pytest.raises(ConfigError, match=message):
        read_inputs(folder, DIGITS)
    assert limit == Image.MAX_IMAGE_PIXELS  # left alone


@pytest.mark.parametrize(
    ("name", "row"), [("points.csv", 3), ("points.npy", 1)], ids=["csv NaN", "npy inf"]
)
def test_nan_or_infinite_values_are_refused_naming_the_row(
    tmp_path: Path, name: str, row: int
) -> None:
    path = tmp_path / name
    if name.endswith(".csv"):
        path.write_text("x,y\n1,2\n3,4\n5,6\nnan,1\n")
    else:
        np.save(path, np.array([[1, 2], [3, np.inf], [np.nan, 0]], dtype=np.float32))
    message = re.escape(f"input={path}: row {row} (counting from 0) holds NaN or infinite values")
    with pytest.raises(ConfigError, match=message):
        read_inputs(path, POINTS)


def test_nan_inputs_are_refused_in_one_sentence(make_cfg, runs, tmp_path: Path) -> None:
    source = tmp_path / "points.csv"
    source.write_text("1,2\n3,inf\n")
    message = re.escape(f"input={source}: row 1 (counting from 0) holds NaN or infinite values;")
    with pytest.raises(ConfigError, match=message):
        predict(make_cfg(f"ckpt_path={runs['points']}", f"input={source}", config_name="predict"))
    assert not list(tmp_path.glob("**/predictions.csv"))


def write_npy_header(path: Path, descr: str, shape: tuple[int, ...], data: bytes) -> None:
    """A .npy file whose header says `descr` and `shape`, followed by `data` whatever its size."""
    with open(path, "wb") as file:
        header = {"descr": descr, "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(file, header)
        file.write(data)


def test_a_npy_header_promising_more_than_the_file_holds_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.npy"
    write_npy_header(path, "<f4", (10**12, 2), bytes(16))
    size = path.stat().st_size
    message = re.escape(
        f"input={path}: its header promises a float32 array of shape (1000000000000, 2), "
        f"{size - 16 + 8 * 10**12} bytes, but the file holds {size} bytes;"
    )
    with pytest.raises(ConfigError, match=message):
        read_inputs(path, POINTS)


def test_object_arrays_are_never_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "objects.npy"
    np.save(path, np.array([[1, 2], [3, None]], dtype=object), allow_pickle=True)
    with pytest.raises(ConfigError, match=r"is not a numeric \.npy array \(.*allow_pickle=False"):
        read_inputs(path, POINTS)


def test_predict_never_writes_over_a_file_it_did_not_write(make_cfg, runs, tmp_path) -> None:
    """Not the input, nor the checkpoint, ever; another file only when it is a table of
    predictions (an earlier run's) or with overwrite=true."""
    source = tmp_path / "points.csv"
    source.write_text("2,2\n-2,-2\n")
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    for output, message in (
        (source, "is the file this command reads"),
        (runs["points"], "is the file this command reads"),
        (notes, "exists and is not an earlier table of predictions"),
    ):
        with pytest.raises(ConfigError, match=f"^output={re.escape(str(output))} {message}"):
            predict_in_process(make_cfg, runs["points"], source, f"output={output}")
    with pytest.raises(ConfigError, match="is the file this command reads"):
        predict_in_process(make_cfg, runs["points"], source, f"output={source}", "overwrite=true")
    assert source.read_text() == "2,2\n-2,-2\n" and notes.read_text() == "mine\n"
    table = tmp_path / "predictions.csv"
    first = predict_in_process(make_cfg, runs["points"], source, f"output={table}")
    assert predict_in_process(make_cfg, runs["points"], source, f"output={table}") == first
    replaced = predict_in_process(
        make_cfg, runs["points"], source, f"output={notes}", "overwrite=true"
    )
    assert replaced == first
