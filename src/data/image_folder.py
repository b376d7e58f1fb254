"""A folder of images in class subfolders, read lazily by workers: data too big for memory."""

from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset
from torchvision import transforms
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import find_classes

from src.data.folds import check_folds, fold_split
from src.data.spec import DataSpec
from src.data.stateful import stateful_loader
from src.data.vision import normalise
from src.errors import ConfigError

SPLITS = ("train", "val", "test")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class ImageFolderDataModule(L.LightningDataModule):
    """torchvision's `ImageFolder`: `root/train/<class>/*.jpg`, `root/val/...` and optionally
    `root/test/...` (the validation images are the test set when there is none), or
    `root/<class>/*.jpg` cut into train/val/test by the `splits` fractions, drawn with
    `split_seed`. With `folds`, the training images (with the validation ones, in one folder)
    are cut into folds, and `fold` validates.

    Each image is decoded when its batch is loaded, by `num_workers` worker processes, resized to
    `image_size`, converted to `channels` (1: grey, 3: RGB) and normalised with `mean` and `std`
    (ImageNet's by default); with `augment`, training images are also randomly cropped (80-100%
    of the area) and flipped. Batches come from torchdata's `StatefulDataLoader`, so a run
    resumes mid-epoch exactly; under DDP, Lightning's distributed sampler shards them. The class
    names (the subfolders', sorted) go into the spec, to name predictions and the confusion
    matrix's rows.
    """

    def __init__(
        self,
        root: str,
        image_size: Sequence[int] = (224, 224),
        channels: int = 3,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        augment: bool = False,
        splits: Sequence[float] = (0.8, 0.1, 0.1),
        split_seed: int = 0,
        folds: int | None = None,
        fold: int = 0,
        batch_size: int = 32,
        num_workers: int = 2,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if channels not in (1, 3) or len(image_size) != 2 or min(image_size) < 1:
            raise ConfigError(
                f"data.channels={channels} and data.image_size={list(image_size)}: images are "
                f"grey (1) or RGB (3) channels, of [height, width] pixels"
            )
        if len(splits) != 3 or min(splits) < 0 or abs(sum(splits) - 1) > 1e-6:
            raise ConfigError(
                f"data.splits must be three train/val/test fractions summing to 1, got "
                f"{list(splits)}"
            )
        self.root = Path(root).expanduser()
        self.image_size, self.channels = tuple(image_size), channels
        self.mean, self.std = tuple(mean)[:channels], tuple(std)[:channels]
        check_folds(folds, fold)
        self.augment, self.fractions, self.split_seed = augment, tuple(splits), split_seed
        self.folds, self.fold = folds, fold
        self.batch_size, self.seed = batch_size, seed
        self.loader_options = {
            "num_workers": num_workers,
            "pin_memory": pin_memory,
            "persistent_workers": persistent_workers and num_workers > 0,
        }
        self.datasets: dict[str, Dataset] = {}

    @property
    def classes(self) -> list[str]:
        """The class subfolders' names, sorted: label k is `classes[k]`."""
        folder = self.root / "train" if (self.root / "train").is_dir() else self.root
        try:
            return find_classes(str(folder))[0]
        except (FileNotFoundError, NotADirectoryError):
            raise ConfigError(
                f"data.root={self.root} holds no class subfolders; put the images in "
                f"{self.root}/<class>/ or {self.root}/train/<class>/ (and val/<class>/)"
            ) from None

    @property
    def spec(self) -> DataSpec:
        shape = (self.channels, *self.image_size)
        return DataSpec(
            "classification", "image", shape, len(self.classes), classes=tuple(self.classes)
        )

    def transform(self, train: bool) -> transforms.Compose:
        """Per image: resize (or, training with `augment`, crop randomly and flip), then to a
        normalised float tensor of `channels`."""
        steps: list = [transforms.Resize(self.image_size)]
        if train and self.augment:
            steps = [
                transforms.RandomResizedCrop(self.image_size, scale=(0.8, 1.0)),
                transforms.RandomHorizontalFlip(),
            ]
        if self.channels == 1:
            steps.append(transforms.Grayscale(1))
        return transforms.Compose(
            [*steps, transforms.ToTensor(), transforms.Normalize(self.mean, self.std)]
        )

    def preprocess(self, inputs: Tensor) -> Tensor:
        """New uint8 images (N, C, H, W) to predict, resized already -> normalised floats."""
        return normalise(inputs, self.mean, self.std)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        classes = self.classes
        if (self.root / "train").is_dir():
            self.datasets = self._split_folders(classes)
            return
        train, other = self._open(self.root, True, classes), self._open(self.root, False, classes)
        order = self._shuffled(len(train))
        sizes = [round(f * len(order)) for f in self.fractions[:2]]
        cuts = dict(zip(SPLITS, order.split([*sizes, len(order) - sum(sizes)]), strict=True))
        if self.folds:
            cuts |= fold_split(order[: sum(sizes)], self.folds, self.fold)
        for split, indices in cuts.items():
            self.datasets[split] = Subset(train if split == "train" else other, indices.tolist())
            if not len(self.datasets[split]):
                raise ConfigError(
                    f"data.splits={list(self.fractions)} leaves the {split} split of the "
                    f"{len(order)} images in {self.root} empty; give it a larger fraction"
                )

    def _split_folders(self, classes: list[str]) -> dict[str, Dataset]:
        """The `train/`, `val/` and `test/` folders' images (`val/` tests when there is no
        `test/`); with `folds`, the folds cut the training images, one validates."""
        folders = {split: self.root / split for split in SPLITS}
        if not folders["val"].is_dir():
            raise ConfigError(
                f"data.root={self.root} has train/ but no val/; add {self.root}/val/<class>/, "
                f"or put every image in {self.root}/<class>/ to split them by data.splits"
            )
        if not folders["test"].is_dir():
            folders["test"] = folders["val"]
        if not self.folds:
            return {s: self._open(folders[s], s == "train", classes) for s in SPLITS}
        train = self._open(folders["train"], True, classes)
        cuts = fold_split(self._shuffled(len(train)), self.folds, self.fold)
        return {
            "train": Subset(train, cuts["train"].tolist()),
            "val": Subset(self._open(folders["train"], False, classes), cuts["val"].tolist()),
            "test": self._open(folders["test"], False, classes),
        }

    def _shuffled(self, count: int) -> torch.Tensor:
        """The indices of `count` images in the order `split_seed` draws."""
        return torch.randperm(count, generator=torch.Generator().manual_seed(self.split_seed))

    def _open(self, folder: Path, train: bool, classes: list[str]) -> ImageFolder:
        """The images of `folder`, labelled by the training folder's `classes`."""
        try:
            found = find_classes(str(folder))[0]
        except FileNotFoundError:  # no folder, or no class folders in it
            found = []
        if found != classes:
            raise ConfigError(
                f"data.root: {folder} has the classes {found}, but the training images have "
                f"{classes}; give every split the same class subfolders"
            )
        try:
            return ImageFolder(str(folder), transform=self.transform(train))
        except FileNotFoundError as error:
            raise ConfigError(f"data.root: {error}; put the images there") from None

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader("test")

    def _loader(self, split: str) -> torch.utils.data.DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return stateful_loader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=split == "train",
            generator=generator,
            **self.loader_options,
        )
