"""New inputs for a trained model: a folder of images, or a .npy/.csv array, checked by shape.

Crafted inputs are refused before they are decoded: only regular files are opened (a FIFO would
block), images over PIL's pixel limit and .npy headers that promise more data than the file holds
are refused, and NaN or infinite values never reach the model.
"""

import math
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from src.data.spec import DataSpec
from src.errors import ConfigError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# the decoders tried: a file named .png holding another format (EPS runs Ghostscript) is refused
IMAGE_FORMATS = ("PNG", "JPEG")
IMAGE_MODES = {1: "L", 3: "RGB"}


def read_inputs(path: Path, spec: DataSpec) -> tuple[Tensor, list[str]]:
    """The samples at `path` as one batch for a model of `spec`, and a name for each (the image's
    file name, or the array's row number).

    Images come back as uint8 (N, C, H, W), for the datamodule's own normalisation
    (`model_inputs`); arrays as float32 (N, *input_shape), or int64 for integer inputs (token
    ids), whose values must then be whole numbers.
    """
    wants_images = spec.kind == "image"
    if path.is_dir() != wants_images:
        given = "a folder" if path.is_dir() else f"a {path.suffix} file"
        needed = "a folder of PNG/JPG images" if wants_images else "a .npy or .csv file"
        raise ConfigError(
            f"input={path} is {given}, but the model takes {spec.kind} inputs of shape "
            f"{spec.input_shape}; give {needed}"
        )
    if wants_images:
        return read_images(path, spec.input_shape)
    samples = as_samples(read_array(path), spec.input_shape, path)
    rows = samples.reshape(len(samples), -1)
    integers = not spec.torch_dtype.is_floating_point
    problems = {
        "NaN or infinite values; replace them with numbers": ~np.isfinite(rows).all(axis=1),
        f"values that are not whole numbers, but the model takes {spec.dtype} inputs; fix them": (
            (rows != np.round(rows)).any(axis=1) if integers else np.zeros(len(rows), bool)
        ),
    }
    for problem, bad in problems.items():
        if bad.any():
            raise ConfigError(
                f"input={path}: row {np.flatnonzero(bad)[0]} (counting from 0) holds {problem} "
                f"or drop the row"
            )
    values = samples.astype(np.int64 if integers else np.float32)
    return torch.from_numpy(values), [str(i) for i in range(len(samples))]


def model_inputs(inputs: Tensor, spec: DataSpec, datamodule: object) -> Tensor:
    """New inputs as the model takes them, in the data's dtype: through the datamodule's
    `preprocess(inputs)` when it has one (images: its normalisation), else images scaled to
    [0, 1] as torchvision's `ToTensor` does, other inputs as they are."""
    preprocess = getattr(datamodule, "preprocess", None)
    if callable(preprocess):
        inputs = preprocess(inputs)
    elif spec.kind == "image":
        inputs = inputs.float() / 255
    return inputs.to(spec.torch_dtype)


def read_images(folder: Path, shape: tuple[int, ...]) -> tuple[Tensor, list[str]]:
    """Every PNG/JPG in `folder`, by name, converted to C channels (grey or RGB) and resized to
    H x W (bilinear): uint8 (N, C, H, W) and the file names.

    Sub-folders are skipped, whatever their name; other entries named like images that are not
    regular files (a FIFO, a socket, a broken link) are refused, as are images with more pixels
    than PIL's `Image.MAX_IMAGE_PIXELS`.
    """
    channels, height, width = shape
    if channels not in IMAGE_MODES:
        raise ConfigError(
            f"input={folder}: images are read as grey or RGB, but the model takes "
            f"{channels} channels; give a model trained on 1- or 3-channel images"
        )
    files = sorted(
        p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir()
    )
    if not files:
        raise ConfigError(
            f"input={folder} holds no {'/'.join(IMAGE_SUFFIXES)} images; put the "
            f"images to predict there"
        )
    images = []
    for file in files:
        if not file.is_file():
            raise ConfigError(
                f"input={folder}: {file.name} is not a regular file; replace or remove it"
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(file, formats=IMAGE_FORMATS) as image:
                    resized = image.convert(IMAGE_MODES[channels]).resize((width, height))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ConfigError(
                f"input={folder}: {file.name} declares more than PIL's limit of "
                f"{Image.MAX_IMAGE_PIXELS} pixels (a possible decompression bomb); shrink or "
                f"remove it"
            ) from None
        except (OSError, UnidentifiedImageError) as error:
            raise ConfigError(
                f"input={folder}: {file.name} is not a readable image ({error}); "
                f"replace or remove it"
            ) from None
        images.append(np.asarray(resized).reshape(height, width, channels))
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return batch, [file.name for file in files]


def read_array(path: Path) -> np.ndarray:
    """A .npy array, or the numbers of a .csv file (one sample per row, an optional header)."""
    array = read_npy(path) if path.suffix.lower() == ".npy" else read_csv(path)
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ConfigError(f"input={path} holds {array.dtype} values; give real numbers")
    return array.astype(np.float64)


def read_npy(path: Path) -> np.ndarray:
    """A .npy array, its header read first: one that promises more data than the file holds is
    refused before anything is allocated, and pickled objects are never loaded."""
    size = path.stat().st_size
    with open(path, "rb") as file:
        try:
            version = np.lib.format.read_magic(file)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(file)
            needed = file.tell() + math.prod(shape) * dtype.itemsize
            if needed <= size:
                file.seek(0)
                return np.lib.format.read_array(file, allow_pickle=False)
        except ValueError as error:
            raise ConfigError(
                f"input={path} is not a numeric .npy array ({error}); save it with "
                f"numpy.save from a float array"
            ) from None
    raise ConfigError(
        f"input={path}: its header promises a {dtype} array of shape {shape}, {needed} bytes, "
        f"but the file holds {size} bytes; save the array again with numpy.save"
    )


def read_csv(path: Path) -> np.ndarray:
    """The numbers of a CSV file as a 2-D array; a first row without a number is a header."""
    lines = path.read_text(encoding="utf-8-sig").splitlines()  # -sig: Excel's byte-order mark
    header = bool(lines) and not any(is_number(field) for field in lines[0].split(","))
    rows = [line for line in lines[header:] if line.strip()]
    if not rows:
        raise ConfigError(f"input={path} holds no samples; give one sample per row")
    try:
        return np.loadtxt(rows, delimiter=",", ndmin=2)
    except ValueError as error:
        reason = str(error).split(";")[0].rstrip(".")  # not numpy's advice on its arguments
        raise ConfigError(
            f"input={path} is not a CSV of numbers ({reason}); give one sample per row, values "
            f"separated by commas"
        ) from None


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def as_samples(array: np.ndarray, shape: tuple[int, ...], path: Path) -> np.ndarray:
    """`array` as (N, *shape): it may be that already, one sample (of `shape`, or flat), or one
    row of prod(shape) values per sample; anything else is an error naming the expected shape."""
    size = math.prod(shape)
    if array.shape == shape or array.shape == (size,):  # one sample
        array = array.reshape(1, *shape)
    elif array.ndim == 2 and array.shape[1] == size:
        array = array.reshape(-1, *shape)
    if array.shape[1:] != shape or len(array) == 0:
        expected = ", ".join(map(str, ("N", *shape)))
        raise ConfigError(
            f"input={path} has shape {array.shape}, but the model takes samples of shape {shape}; "
            f"give an array of shape ({expected}) or one row of {size} values per sample"
        )
    return array
