"""Image data and networks: torchvision files, both loader paths, augmentation, ResNet weights."""

from types import SimpleNamespace
from urllib.error import URLError

import pytest
import torch
from PIL import Image

from src.data.cifar import CIFAR10DataModule
from src.data.mnist import MNISTDataModule
from src.data.points import PointsDataModule
from src.data.vision import random_crop_and_flip
from src.models.nets.resnet import ResNet18
from src.train import train
from src.utils.config import ConfigError


def loaded(datamodule_class, data_dir, **kwargs):
    datamodule = datamodule_class(data_dir=str(data_dir), val_size=20, batch_size=16, **kwargs)
    datamodule.prepare_data()
    datamodule.setup()
    return datamodule


@pytest.mark.parametrize("name", ["mnist", "cifar"])
def test_memory_and_torch_paths_yield_the_same_batches(request, name: str) -> None:
    data_dir = request.getfixturevalue(f"{name}_dir")
    cls = MNISTDataModule if name == "mnist" else CIFAR10DataModule
    memory = loaded(cls, data_dir, loader="memory", augment=False)
    standard = loaded(cls, data_dir, loader="torch", augment=False)
    assert memory.splits["train"][0].dtype == torch.float32  # normalised once, when loaded
    for split in ("train_dataloader", "val_dataloader", "test_dataloader"):
        pairs = zip(getattr(memory, split)(), getattr(standard, split)(), strict=True)
        for (x1, y1), (x2, y2) in pairs:
            assert x1.shape == (len(y1), *memory.spec.input_shape)
            assert torch.allclose(x1, x2, atol=1e-6) and torch.equal(y1, y2)


def test_val_split_is_seeded_and_disjoint_from_train(mnist_dir) -> None:
    first, again = loaded(MNISTDataModule, mnist_dir), loaded(MNISTDataModule, mnist_dir, seed=7)
    assert torch.equal(first.indices["val"], again.indices["val"])
    assert not set(first.indices["val"].tolist()) & set(first.indices["train"].tolist())
    assert len(first.indices["val"]) + len(first.indices["train"]) == 120


def test_augmentation_crops_and_flips_each_image() -> None:
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    flipped_or_not = random_crop_and_flip(images, padding=0)
    for image, out in zip(images, flipped_or_not, strict=True):
        assert torch.equal(out, image) or torch.equal(out, image.flip(-1))
    torch.manual_seed(0)
    cropped = random_crop_and_flip(images, padding=2)
    padded = torch.nn.functional.pad(images, (2,) * 4, mode="reflect")
    for image, out in zip(padded, cropped, strict=True):
        windows = image.unfold(1, 8, 1).unfold(2, 8, 1).permute(1, 2, 0, 3, 4).flatten(0, 1)
        assert any(torch.equal(out, w) or torch.equal(out, w.flip(-1)) for w in windows)


def test_cifar_augments_only_training_batches(cifar_dir) -> None:
    plain = loaded(CIFAR10DataModule, cifar_dir, augment=False)
    augmented = loaded(CIFAR10DataModule, cifar_dir, augment=True)
    assert not torch.equal(
        next(iter(plain.train_dataloader()))[0], next(iter(augmented.train_dataloader()))[0]
    )
    assert torch.equal(
        next(iter(plain.val_dataloader()))[0], next(iter(augmented.val_dataloader()))[0]
    )


def test_ddp_ranks_get_disjoint_shards_that_cover_the_data() -> None:
    served = []
    for rank in (0, 1):
        datamodule = PointsDataModule(num_samples=200, batch_size=16)
        datamodule.trainer = SimpleNamespace(global_rank=rank, world_size=2, strategy=None)
        datamodule.on_device = False
        datamodule.setup()
        served += [tuple(row.tolist()) for x, _ in datamodule.train_dataloader() for row in x]
    assert len(served) == len(set(served)) == 160


@pytest.mark.parametrize(
    ("cls", "where"),
    [(MNISTDataModule, "MNIST/raw/"), (CIFAR10DataModule, "cifar-10-batches-py/")],
)
def test_missing_files_say_what_to_put_where(tmp_path, cls, where: str) -> None:
    with pytest.raises(
        FileNotFoundError, match=f"data.data_dir={tmp_path}.*put {where}.*data.download=true"
    ):
        cls(data_dir=str(tmp_path)).prepare_data()


def test_corrupt_cifar_fails_torchvisions_integrity_check(cifar_dir) -> None:
    batch = cifar_dir / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:-1] + b"x")
    with pytest.raises(FileNotFoundError, match="missing or corrupt"):
        CIFAR10DataModule(data_dir=str(cifar_dir)).prepare_data()


def test_pretrained_resnet_without_cached_weights_fails_clearly(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError, match=r"not cached at .*resnet18-.*\.pth.*weights_path="):
        ResNet18((3, 32, 32), 10, pretrained=True)


def test_resnet_loads_local_weights_where_shapes_match(tmp_path) -> None:
    source = ResNet18((3, 32, 32), 10)
    torch.save(source.model.state_dict(), tmp_path / "weights.pt")
    loaded_net = ResNet18((3, 32, 32), 100, weights_path=str(tmp_path / "weights.pt"))
    assert torch.equal(loaded_net.model.layer4[1].conv2.weight, source.model.layer4[1].conv2.weight)
    assert loaded_net.model.fc.out_features == 100


def test_image_model_on_points_fails_at_start_up(make_cfg) -> None:
    with pytest.raises(ConfigError) as error:
        train(make_cfg("model=cnn", "data=points", "extras.print_config=false"))
    message = str(error.value)
    assert "model=cnn cannot train on data=points" in message
    assert "CNN needs image (C, H, W) input" in message
    assert "models that take data=points: logreg, mlp;" in message
    assert "data that model=cnn takes: cifar, fake_images, mnist." in message


def test_figures_are_saved_and_valid_pngs(make_cfg, mnist_dir, tmp_path) -> None:
    overrides = ["data=mnist", "model=cnn", f"data.data_dir={mnist_dir}", "data.val_size=20"]
    train(
        make_cfg(
            *overrides,
            "trainer.max_epochs=1",
            "callbacks.figures.every_n_epochs=1",
            "logger=tensorboard",
            "extras.print_config=false",
        )
    )
    names = ("confusion_matrix", "predictions")
    for name in [f"test_{name}" for name in names] + [f"val_{name}_epoch000" for name in names]:
        with Image.open(tmp_path / "figures" / f"{name}.png") as image:
            image.verify()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
