"""Image data and networks: torchvision files, both loader paths, augmentation, ResNet weights."""

import email.message
import gzip
import hashlib
import io
import pickle
import struct
import tarfile
import urllib.request
import urllib.response
from pathlib import Path
from types import SimpleNamespace
from urllib.error import URLError

import pytest
import torch
from PIL import Image
from torchvision.datasets import CIFAR10, MNIST

from src.data.cifar import CIFAR10DataModule
from src.data.mnist import MNISTDataModule
from src.data.points import PointsDataModule
from src.data.vision import random_crop_and_flip
from src.errors import ConfigError
from src.models.nets.resnet import ResNet18
from src.train import train
from tests.conftest import write_mnist


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
        datamodule.trainer = SimpleNamespace(
            global_rank=rank, world_size=2, strategy=None, current_epoch=0
        )
        datamodule.on_device = False
        datamodule.setup()
        served += [tuple(row.tolist()) for x, _ in datamodule.train_dataloader() for row in x]
    assert len(served) == len(set(served)) == 160


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """A stand-in for the internet: `urllib.request.urlopen` serves the files put in the returned
    dict by name and fails for anything else, as a machine offline does."""
    served: dict[str, bytes] = {}

    def urlopen(request: urllib.request.Request | str, *args, **kwargs):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        name = url.rsplit("/", 1)[-1]
        if name not in served:
            raise URLError("[Errno -2] Name or service not known")
        response = urllib.response.addinfourl(
            io.BytesIO(served[name]), email.message.Message(), url, 200
        )
        response.length = len(served[name])  # as http.client's responses have
        return response

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return served


@pytest.mark.parametrize(
    ("cls", "where"),
    [(MNISTDataModule, "MNIST/raw/"), (CIFAR10DataModule, "cifar-10-batches-py/")],
)
def test_missing_files_say_what_to_put_where(tmp_path, network, cls, where: str) -> None:
    with pytest.raises(
        ConfigError, match=f"data.data_dir={tmp_path}.*put {where}.*data.download=true"
    ):
        cls(data_dir=str(tmp_path), download=False).prepare_data()
    offline = f"could not be downloaded: .*Name or service not known.*put {where}.*run again online"
    with pytest.raises(ConfigError, match=offline):
        cls(data_dir=str(tmp_path / "offline")).prepare_data()


def test_mnist_downloads_on_first_use(tmp_path, network, monkeypatch) -> None:
    raw = write_mnist(tmp_path / "source") / "MNIST" / "raw"
    resources = []
    for path in sorted(raw.iterdir()):
        network[f"{path.name}.gz"] = gzip.compress(path.read_bytes())
        resources.append((f"{path.name}.gz", hashlib.md5(network[f"{path.name}.gz"]).hexdigest()))
    monkeypatch.setattr(MNIST, "resources", resources)
    datamodule = MNISTDataModule(data_dir=str(tmp_path / "data"), val_size=20)
    datamodule.prepare_data()
    datamodule.setup()
    assert (tmp_path / "data" / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()
    assert len(datamodule.splits["train"][0]) == 100 and len(datamodule.splits["test"][0]) == 40


def test_cifar_downloads_on_first_use(tmp_path, cifar_dir, network, monkeypatch) -> None:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        tar.add(cifar_dir / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    network[CIFAR10.filename] = archive.getvalue()
    monkeypatch.setattr(CIFAR10, "tgz_md5", hashlib.md5(archive.getvalue()).hexdigest())
    datamodule = CIFAR10DataModule(data_dir=str(tmp_path / "data"), val_size=20)
    datamodule.prepare_data()
    datamodule.setup()
    assert len(datamodule.splits["train"][0]) == 80 and len(datamodule.splits["test"][0]) == 20


def test_corrupt_cifar_fails_torchvisions_integrity_check(cifar_dir) -> None:
    batch = cifar_dir / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:-1] + b"x")
    with pytest.raises(ConfigError, match="CIFAR10 is missing or corrupt under"):
        CIFAR10DataModule(data_dir=str(cifar_dir), download=False).prepare_data()


def rewrite_mnist_labels(data_dir: Path, prefix: str, labels: list[int]) -> None:
    """Replace `<prefix>-labels-idx1-ubyte` by a valid IDX file holding `labels`."""
    path = data_dir / "MNIST" / "raw" / f"{prefix}-labels-idx1-ubyte"
    path.write_bytes(struct.pack(">II", 2049, len(labels)) + bytes(labels))


MNIST_LABELS = [i % 10 for i in range(120)]  # what `write_mnist` writes for training


@pytest.mark.parametrize(
    ("prefix", "labels", "problem"),
    [
        (
            "train",
            MNIST_LABELS[:-1],
            "120 images in MNIST/raw/train-images-idx3-ubyte but 119 labels in "
            "MNIST/raw/train-labels-idx1-ubyte",
        ),
        (
            "t10k",
            MNIST_LABELS[:39],
            "40 images in MNIST/raw/t10k-images-idx3-ubyte but 39 labels in "
            "MNIST/raw/t10k-labels-idx1-ubyte",
        ),
        (
            "train",
            [*MNIST_LABELS[:-1], 12],
            "label 12 in MNIST/raw/train-labels-idx1-ubyte is outside 0..9",
        ),
    ],
)
def test_inconsistent_mnist_files_fail_when_loaded(
    mnist_dir, prefix: str, labels: list[int], problem: str
) -> None:
    rewrite_mnist_labels(mnist_dir, prefix, labels)
    datamodule = MNISTDataModule(data_dir=str(mnist_dir), val_size=20)
    datamodule.prepare_data()
    with pytest.raises(ConfigError) as error:
        datamodule.setup()
    assert str(error.value) == (
        f"MNIST is inconsistent under data.data_dir={mnist_dir}: {problem}; replace the files "
        "with the originals, or delete them and run once online with data.download=true"
    )


def rewrite_cifar_batch(data_dir: Path, name: str, monkeypatch, **changes) -> None:
    """Rewrite the pickle `name` with `changes`, and point torchvision's md5 table at it."""
    path = data_dir / "cifar-10-batches-py" / name
    path.write_bytes(pickle.dumps(pickle.loads(path.read_bytes()) | changes))
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    for table in ("train_list", "test_list"):
        rows = [[file, md5 if file == name else old] for file, old in getattr(CIFAR10, table)]
        monkeypatch.setattr(CIFAR10, table, rows)


@pytest.mark.parametrize(
    ("name", "changes", "problem"),
    [
        (
            "data_batch_3",
            {"labels": [i % 10 for i in range(19)]},
            "100 images in cifar-10-batches-py/data_batch_1..5 but 99 labels",
        ),
        (
            "test_batch",
            {"labels": [i % 10 for i in range(19)] + [-1]},
            "label -1 in cifar-10-batches-py/test_batch is outside 0..9",
        ),
    ],
)
def test_inconsistent_cifar_batches_fail_when_loaded(
    cifar_dir, monkeypatch, name: str, changes: dict, problem: str
) -> None:
    rewrite_cifar_batch(cifar_dir, name, monkeypatch, **changes)
    datamodule = CIFAR10DataModule(data_dir=str(cifar_dir), val_size=20)
    datamodule.prepare_data()  # torchvision's md5 check passes: the files are whole
    with pytest.raises(ConfigError, match=f"^CIFAR10 is inconsistent under .*: {problem}; "):
        datamodule.setup()


def test_short_labels_file_stops_training_before_it_starts(make_cfg, tmp_path) -> None:
    data_dir = write_mnist(tmp_path / "data")
    rewrite_mnist_labels(data_dir, "train", MNIST_LABELS[:-1])
    args = ["data=mnist", "model=cnn", f"data.data_dir={data_dir}", "data.val_size=20"]
    with pytest.raises(ConfigError, match="but 119 labels in MNIST/raw/train-labels-idx1-ubyte"):
        train(make_cfg(*args, "trainer.max_epochs=1"))
    assert not list(tmp_path.glob("checkpoints/*.ckpt"))


def test_pretrained_resnet_without_cached_weights_fails_clearly(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(ConfigError, match=r"not cached at .*resnet18-.*\.pth.*weights_path="):
        ResNet18((3, 32, 32), 10, pretrained=True)


class Payload:
    def __reduce__(self):
        return (print, ("ran",))


def test_a_weights_file_that_cannot_be_used_is_one_sentence(tmp_path, capsys) -> None:
    (tmp_path / "garbage.pt").write_bytes(b"not a state dict")
    torch.save({"weight": Payload()}, tmp_path / "code.pt")  # a pickle that would run code
    for name, reason in [
        ("missing.pt", "no such file"),
        ("garbage.pt", "cannot be used: it is truncated, or not a file torch.save wrote"),
        ("code.pt", "cannot be used: it holds objects other than weights"),
    ]:
        with pytest.raises(
            ConfigError, match=f"model.net.weights_path={tmp_path / name}.*{reason}"
        ):
            ResNet18((3, 32, 32), 10, weights_path=str(tmp_path / name))
    assert "ran" not in capsys.readouterr().out


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
