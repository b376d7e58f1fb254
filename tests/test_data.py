"""Batches: sharding across ranks, both loader paths, the points datamodule, and the folds of
every built-in datamodule."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from torch.utils.data import Subset

from src.data.batches import EpochBatchSampler, InMemoryLoader
from src.data.points import PointsDataModule
from src.data.spec import DataSpec
from tests.conftest import write_image_folder


@pytest.mark.parametrize("num_samples", [64, 67, 70])
@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_shards_are_disjoint_complete_and_in_step(num_samples: int, world_size: int) -> None:
    samplers = [
        EpochBatchSampler(num_samples, 8, shuffle=True, seed=1, rank=rank, world_size=world_size)
        for rank in range(world_size)
    ]
    shards = [torch.cat(list(sampler)) for sampler in samplers]
    served = torch.cat(shards)
    dropped = num_samples % (8 * world_size)
    dropped = dropped if dropped < world_size else 0
    assert len(served) == len(set(served.tolist())) == num_samples - dropped
    assert len({len(sampler) for sampler in samplers}) == 1
    assert all(len(list(sampler)) == len(sampler) for sampler in samplers)


def test_epochs_reshuffle_reproducibly() -> None:
    sampler = EpochBatchSampler(100, 10, shuffle=True, seed=3)
    first = torch.cat(list(sampler))
    sampler.set_epoch(1)
    second = torch.cat(list(sampler))
    assert not torch.equal(first, second)
    sampler.set_epoch(0)
    assert torch.equal(torch.cat(list(sampler)), first)
    assert torch.equal(
        torch.cat(list(EpochBatchSampler(100, 10, shuffle=False))), torch.arange(100)
    )


def test_in_memory_loader_indexes_every_tensor() -> None:
    inputs, targets = torch.randn(10, 3), torch.arange(10)
    loader = InMemoryLoader((inputs, targets), EpochBatchSampler(10, 4, shuffle=True))
    batches = list(loader)
    assert [len(x) for x, _ in batches] == [4, 4, 2] and len(loader) == 3
    for x, y in batches:
        assert torch.equal(x, inputs[y])


def points(**kwargs) -> PointsDataModule:
    datamodule = PointsDataModule(**kwargs)
    datamodule.setup()
    return datamodule


def test_memory_and_torch_loaders_yield_the_same_batches() -> None:
    memory, standard = points(loader="memory", seed=5), points(loader="torch", seed=5)
    for make in ("train_dataloader", "val_dataloader"):
        for (x1, y1), (x2, y2) in zip(
            getattr(memory, make)(), getattr(standard, make)(), strict=True
        ):
            assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_points_follow_their_parameters() -> None:
    datamodule = points(num_samples=1000, means=[[5.0, 0.0], [-5.0, 0.0], [0.0, 9.0]], std=0.5)
    assert datamodule.spec == DataSpec("classification", "vector", (2,), 3)
    sizes = {name: len(split[0]) for name, split in datamodule.splits.items()}
    assert sizes == {"train": 800, "val": 100, "test": 100}
    inputs, labels = (torch.cat(parts) for parts in zip(*datamodule.splits.values(), strict=True))
    for label, mean in enumerate(datamodule.means):
        cloud = inputs[labels == label]
        assert torch.allclose(cloud.mean(0), mean, atol=0.1)
        assert torch.allclose(cloud.std(0), torch.tensor(0.5), atol=0.1)
    assert torch.equal(
        points(num_samples=1000).splits["test"][0],
        points(num_samples=1000, seed=9).splits["test"][0],
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"splits": [0.8, 0.1, 0.2]}, "data.splits must be three positive"),
        ({"std": 0}, "data.std must be positive"),
        ({"means": [[1.0, 2.0]]}, "data.means must list 2 or more"),
        ({"batch_size": 0}, "data.batch_size must be a positive integer"),
        ({"num_samples": 5}, "leaves a split empty"),
    ],
)
def test_points_reject_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PointsDataModule(**kwargs)


def sample_ids(datamodule, split: str) -> list:
    """What identifies each sample of `split`: an in-memory split's input rows, or the image
    files behind an image folder's."""
    if hasattr(datamodule, "splits"):
        return [tuple(row.flatten().tolist()) for row in datamodule.splits[split][0]]
    subset = datamodule.datasets[split]
    if isinstance(subset, Subset):
        return [subset.dataset.samples[i][0] for i in subset.indices]
    return [path for path, _ in subset.samples]


def split_override(argument: str) -> tuple[str, str]:
    key, _, value = argument.partition("=")
    return key, value


FOLDED = {
    "points": ["data=points"],
    "fake images": ["data=fake_images", "data.num_samples=60"],
    "mnist": ["data=mnist", "model=cnn", "data.data_dir=MNIST_DIR", "data.val_size=10"],
    "one image folder": ["data=image_folder", "data.root=ONE_FOLDER", "model=resnet18"],
    "train/val folders": ["data=image_folder", "data.root=FOLDERS", "model=resnet18"],
}


@pytest.mark.parametrize("data", FOLDED)
def test_folds_cut_the_training_data_and_keep_the_test_split(
    data: str, make_cfg, mnist_dir: Path, tmp_path: Path
) -> None:
    places = {
        "MNIST_DIR": str(mnist_dir),
        "ONE_FOLDER": str(write_image_folder(tmp_path / "one", {"": 9})),
        "FOLDERS": str(write_image_folder(tmp_path / "folders", {"train": 6, "val": 2, "test": 2})),
    }
    args = [f"{key}={places.get(value, value)}" for key, value in map(split_override, FOLDED[data])]

    def datamodule(*extra: str):
        module = instantiate(make_cfg(*args, *extra).data)
        module.prepare_data()
        module.setup("fit")
        return module

    usual = datamodule()
    pool = sample_ids(usual, "train") + sample_ids(usual, "val")
    if data == "train/val folders":  # the folds cut the training images; val/ is not trained on
        pool = sample_ids(usual, "train")
    validated = []
    for fold in range(3):
        folded = datamodule("data.folds=3", f"data.fold={fold}")
        train, val = sample_ids(folded, "train"), sample_ids(folded, "val")
        assert sorted(train + val) == sorted(pool) and not set(train) & set(val)
        assert sample_ids(folded, "test") == sample_ids(usual, "test")
        validated += val
    assert sorted(validated) == sorted(pool)  # each sample validates in one fold
