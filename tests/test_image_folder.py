"""`data=image_folder`: images in class subfolders, read lazily by workers, split by folder or by a
seed, named by class, resumed exactly mid-epoch with random augmentation in the workers."""

import re

import pytest
import torch

from src.data.image_folder import ImageFolderDataModule
from src.errors import ConfigError
from tests.conftest import killed_and_resumed, run_script, write_image_folder


def sizes(datamodule: ImageFolderDataModule) -> dict[str, int]:
    return {split: len(dataset) for split, dataset in datamodule.datasets.items()}


def test_train_val_and_test_folders_are_the_splits(tmp_path) -> None:
    root = write_image_folder(tmp_path, {"train": 6, "val": 2, "test": 3}, classes=("b", "a"))
    datamodule = ImageFolderDataModule(str(root), image_size=(8, 10), channels=1)
    assert datamodule.spec.classes == ("a", "b")  # sorted, as ImageFolder labels them
    assert datamodule.spec.input_shape == (1, 8, 10) and datamodule.spec.num_outputs == 2
    datamodule.setup()
    assert sizes(datamodule) == {"train": 12, "val": 4, "test": 6}
    images, labels = next(iter(datamodule.train_dataloader()))
    assert images.shape == (12, 1, 8, 10) and images.dtype == torch.float32
    assert sorted(labels.tolist()) == [0] * 6 + [1] * 6


def test_without_a_test_folder_the_validation_images_are_tested(tmp_path) -> None:
    root = write_image_folder(tmp_path, {"train": 6, "val": 2})
    datamodule = ImageFolderDataModule(str(root), image_size=(8, 8))
    datamodule.setup()
    assert sizes(datamodule) == {"train": 12, "val": 4, "test": 4}


def test_one_folder_is_split_by_the_seed(tmp_path) -> None:
    root = write_image_folder(tmp_path, {"": 10}, classes=("x", "y", "z"))

    def split(seed: int) -> dict[str, list[int]]:
        datamodule = ImageFolderDataModule(str(root), splits=(0.6, 0.2, 0.2), split_seed=seed)
        datamodule.setup()
        return {name: list(subset.indices) for name, subset in datamodule.datasets.items()}

    first = split(0)
    assert {name: len(indices) for name, indices in first.items()} == {
        "train": 18,
        "val": 6,
        "test": 6,
    }
    every = [index for indices in first.values() for index in indices]
    assert sorted(every) == list(range(30))  # disjoint, and every image
    assert split(0) == first and split(1) != first


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({}, "holds no class subfolders; put the images in"),
        ({"train": 2}, "has train/ but no val/"),
        ({"train": 2, "val": 0}, "has the classes [], but the training images have ['cat', 'dog']"),
    ],
)
def test_a_folder_that_cannot_be_read_is_one_sentence(tmp_path, layout, message) -> None:
    root = tmp_path / "images"
    root.mkdir()
    for split, count in layout.items():
        if count:
            write_image_folder(root, {split: count})
        else:
            (root / split).mkdir()
    with pytest.raises(ConfigError, match=rf"^data\.root.*{re.escape(message)}"):
        datamodule = ImageFolderDataModule(str(root))
        datamodule.spec  # noqa: B018
        datamodule.setup()


def test_a_killed_run_with_augmentation_in_workers_resumes_exactly(tmp_path) -> None:
    """SIGKILL mid-epoch, then resume: the same weights as a run that was never stopped, though
    two workers draw random crops and flips (each sample's from the epoch's seed and its index)."""
    images = write_image_folder(tmp_path / "images", {"train": 12, "val": 4})
    args = [
        "data=image_folder",
        f"data.root={images}",
        "data.image_size=[16,16]",
        "data.augment=true",
        "data.batch_size=4",
        "model=cnn",
        "model.optimizer.lr=0.01",
        "trainer.max_epochs=2",
        # the thread count decides a convolution's last bits: not the idle cores of the moment
        "threads=1",
        "callbacks.last_checkpoint.every_n_train_steps=2",
        "callbacks.early_stopping=null",
        "test=false",
    ]
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert run_script("train", *args, f"hydra.run.dir={whole}").returncode == 0
    killed_and_resumed(stopped, 8, *args)  # killed in epoch 1, before its third step
    weights = [
        torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
        for run in (whole, stopped)
    ]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])
