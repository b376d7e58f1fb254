"""New inputs for a trained model: a folder of images, or a .npy/.csv array, checked by shape."""

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from src.data.spec import DataSpec
from src.utils.config import ConfigError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_MODES = {1: "L", 3: "RGB"}


def read_inputs(path: Path, spec: DataSpec) -> tuple[Tensor, list[str]]:
    """The samples at `path` as one batch for a model of `spec`, and a name for each (the image's
    file name, or the array's row number).

    Images come back as uint8 (N, C, H, W), for the datamodule's own normalisation; arrays as
    float32 (N, *input_shape).
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
    return torch.from_numpy(samples), [str(i) for i in range(len(samples))]


def read_images(folder: Path, shape: tuple[int, ...]) -> tuple[Tensor, list[str]]:
    """Every PNG/JPG in `folder`, by name, converted to C channels (grey or RGB) and resized to
    H x W (bilinear): uint8 (N, C, H, W) and the file names."""
    channels, height, width = shape
    if channels not in IMAGE_MODES:
        raise ConfigError(
            f"input={folder}: images are read as grey or RGB, but the model takes "
            f"{channels} channels; give a model trained on 1- or 3-channel images"
        )
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConfigError(
            f"input={folder} holds no {'/'.join(IMAGE_SUFFIXES)} images; put the "
            f"images to predict there"
        )
    images = []
    for file in files:
        try:
            with Image.open(file) as image:
                resized = image.convert(IMAGE_MODES[channels]).resize((width, height))
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
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as error:
            raise ConfigError(
                f"input={path} is not a numeric .npy array ({error}); save it with "
                f"numpy.save from a float array"
            ) from None
    else:
        array = read_csv(path)
    if not np.issubdtype(array.dtype, np.number):
        raise ConfigError(f"input={path} holds {array.dtype} values, not numbers; give numbers")
    return array.astype(np.float32)


def read_csv(path: Path) -> np.ndarray:
    """The numbers of a CSV file as a 2-D array, skipping a header row if there is one."""
    for header_rows in (0, 1):
        try:
            return np.loadtxt(path, delimiter=",", ndmin=2, skiprows=header_rows)
        except ValueError:
            continue
    raise ConfigError(
        f"input={path} is not a CSV of numbers; give one sample per row, values "
        f"separated by commas, with at most one header row"
    )


def as_samples(array: np.ndarray, shape: tuple[int, ...], path: Path) -> np.ndarray:
    """`array` as (N, *shape): it may be that already, one sample of `shape`, or one row of
    prod(shape) values per sample; anything else is an error naming the expected shape."""
    size = math.prod(shape)
    if array.shape == shape:
        array = array[None]
    elif array.ndim == 2 and array.shape[1] == size:
        array = array.reshape(-1, *shape)
    if array.shape[1:] != shape or len(array) == 0:
        expected = ", ".join(map(str, ("N", *shape)))
        raise ConfigError(
            f"input={path} has shape {array.shape}, but the model takes samples of shape {shape}; "
            f"give an array of shape ({expected}) or one row of {size} values per sample"
        )
    return array
