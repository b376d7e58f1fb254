"""What image datamodules share: torchvision files (downloaded on first use), a seeded val split,
batch transforms."""

import contextlib
import io
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset
from torchvision import transforms
from torchvision.datasets import VisionDataset

from src.data.folds import fold_split
from src.data.spec import DataSpec
from src.data.tensor_datamodule import BatchTransform, Split, TensorDataModule
from src.errors import ConfigError


class VisionDataModule(TensorDataModule):
    """A torchvision classification data set held in memory as normalised float32 images.

    The test split is the data set's own; `val_size` images of its training set, drawn with
    `split_seed`, are held out for validation (with `folds`, one fold of the training set).
    Images are normalised once, when loaded; with `augment`, the in-memory path crops (reflect
    padding) and flips whole training batches; the `torch` path runs the equivalent torchvision
    transforms per sample.

    Subclasses set the class attributes and `images_and_labels`.
    """

    dataset_class: type[VisionDataset]
    image_shape: tuple[int, int, int]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    files: str  # what must be under data_dir, for the error when it is missing
    # the file(s) holding each split's images and those holding its labels, for the errors
    train_files: tuple[str, str]
    test_files: tuple[str, str]
    crop_padding = 4

    def __init__(
        self,
        data_dir: str,
        download: bool = True,
        val_size: int = 5000,
        split_seed: int = 0,
        augment: bool = False,
        **loader_kwargs,
    ) -> None:
        super().__init__(**loader_kwargs)
        if val_size < 1:
            raise ConfigError(f"data.val_size must be a positive integer, got {val_size}")
        self.data_dir, self.download = Path(data_dir).expanduser(), download
        self.val_size, self.split_seed, self.augment = val_size, split_seed, augment
        self._prepared: dict[bool, VisionDataset] = {}  # read by prepare_data, for setup

    @property
    def spec(self) -> DataSpec:
        return DataSpec("classification", "image", self.image_shape, self.num_classes)

    @staticmethod
    @abstractmethod
    def images_and_labels(dataset: VisionDataset) -> tuple[Tensor, Tensor]:
        """All images as uint8 (N, C, H, W) and labels as int64 (N,)."""

    def prepare_data(self) -> None:
        """Download the data set into `data_dir` if it is not there yet (and `download`); the
        files read are kept for `setup` in this process, which then need not read them again."""
        self._prepared = {
            train: self._open(train, download=self.download) for train in (True, False)
        }

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        images, labels = self._load("train")
        if self.val_size >= len(labels):
            raise ConfigError(f"data.val_size={self.val_size} leaves no training images")
        order = torch.randperm(
            len(labels), generator=torch.Generator().manual_seed(self.split_seed)
        )
        self.indices = {"val": order[: self.val_size], "train": order[self.val_size :]}
        if self.folds:
            self.indices = fold_split(order, self.folds, self.fold)
        images = self.preprocess(images)
        self.splits = {name: (images[idx], labels[idx]) for name, idx in self.indices.items()}
        test_images, test_labels = self._load("test")
        self.splits["test"] = (self.preprocess(test_images), test_labels)

    def preprocess(self, inputs: Tensor) -> Tensor:
        """uint8 images (N, C, H, W) -> normalised float32, once when loaded, and new inputs to
        predict."""
        return normalise(inputs, self.mean, self.std)

    def batch_transform(self, split: Split) -> BatchTransform | None:
        if not (self.augment and split == "train"):
            return None

        def augment(batch: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
            images, labels = batch
            return random_crop_and_flip(images, self.crop_padding), labels

        return augment

    def dataset(self, split: Split) -> Dataset:
        steps: list = [transforms.ToTensor(), transforms.Normalize(self.mean, self.std)]
        if self.augment and split == "train":
            size = self.image_shape[1:]
            steps[:0] = [
                transforms.RandomCrop(size, padding=self.crop_padding, padding_mode="reflect"),
                transforms.RandomHorizontalFlip(),
            ]
        dataset = self._open(train=split != "test", transform=transforms.Compose(steps))
        return dataset if split == "test" else Subset(dataset, self.indices[split].tolist())

    def _load(self, split: Split) -> tuple[Tensor, Tensor]:
        """The images and labels of the `train` or `test` split, checked to match each other."""
        train = split == "train"
        prepared = self._prepared.pop(train, None)
        images, labels = self.images_and_labels(prepared or self._open(train))
        image_files, label_files = self.train_files if split == "train" else self.test_files
        if len(images) != len(labels):
            where = "" if label_files == image_files else f" in {label_files}"
            problem = f"{len(images)} images in {image_files} but {len(labels)} labels{where}"
        elif len(bad := labels[(labels < 0) | (labels >= self.num_classes)]):
            problem = f"label {bad[0].item()} in {label_files} is outside 0..{self.num_classes - 1}"
        else:
            return images, labels
        raise ConfigError(
            f"{self.dataset_class.__name__} is inconsistent under data.data_dir={self.data_dir}: "
            f"{problem}; replace the files with the originals, or delete them and run once "
            "online with data.download=true"
        )

    def _open(self, train: bool, download: bool = False, **kwargs) -> VisionDataset:
        """The torchvision data set, downloaded first if missing and `download`; else an error
        that says which files to put where. torchvision's own messages (each mirror it tries,
        "already verified") are kept out of the output; it checks each file's md5."""
        name, root = self.dataset_class.__name__, str(self.data_dir)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                return self.dataset_class(root, train=train, download=download, **kwargs)
        except (RuntimeError, OSError) as error:
            reason = str(error).strip().splitlines()[-1]
            how, fix = (
                (f"could not be downloaded: {reason}", "run again online")
                if download
                else ("data.download=false", "run once online with data.download=true")
            )
            raise ConfigError(
                f"{name} is missing or corrupt under data.data_dir={self.data_dir} ({how}); put "
                f"{self.files} there, or {fix}"
            ) from None


def normalise(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """uint8 images (N, C, H, W) -> float32, scaled to [0, 1] and normalised per channel."""
    mean_ = torch.tensor(mean).view(1, -1, 1, 1)
    std_ = torch.tensor(std).view(1, -1, 1, 1)
    return (images.float() / 255 - mean_) / std_


def random_crop_and_flip(images: Tensor, padding: int) -> Tensor:
    """Pad each image by `padding` pixels (reflected), crop it back at a random offset, flip
    half of them."""
    n, _, h, w = images.shape
    padded = torch.nn.functional.pad(images, (padding,) * 4, mode="reflect")
    top = torch.randint(0, 2 * padding + 1, (n, 1, 1, 1), device=images.device)
    left = torch.randint(0, 2 * padding + 1, (n, 1, 1, 1), device=images.device)
    rows = top + torch.arange(h, device=images.device).view(1, 1, h, 1)
    cols = left + torch.arange(w, device=images.device).view(1, 1, 1, w)
    batch = torch.arange(n, device=images.device).view(n, 1, 1, 1)
    channel = torch.arange(images.shape[1], device=images.device).view(1, -1, 1, 1)
    cropped = padded[batch, channel, rows, cols]
    flip = torch.rand(n, 1, 1, 1, device=images.device) < 0.5
    return torch.where(flip, cropped.flip(-1), cropped)
