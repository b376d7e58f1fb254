"""The seed CNN on MNIST as a plain PyTorch script: the yardstick for the template's fixed costs.

The same work as `python src/train.py experiment=mnist_cnn trainer.max_epochs=1`, without the
framework: torchvision's MNIST files read into tensors and normalised once, one epoch of Adam
(lr 1e-3, batch 64, seed 0) over shuffled index batches of the 55,000 training images, then the
accuracy on the 5,000 validation and the 10,000 test images.

python scripts/plain_mnist_cnn.py --data-dir ../shared/data
"""

import argparse

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.datasets import MNIST


def seed_cnn() -> nn.Module:
    """The seed's CNN, as `src/models/nets/cnn.py` builds it for MNIST."""
    return nn.Sequential(
        nn.Conv2d(1, 16, kernel_size=5, stride=2, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, kernel_size=5, stride=1, padding=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 10),
    )


def load(data_dir: str, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    dataset = MNIST(data_dir, train=train)
    images = (dataset.data.unsqueeze(1).float() / 255 - 0.1307) / 0.3081
    return images.contiguous(memory_format=torch.channels_last), dataset.targets


def accuracy(net: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    net.eval()
    with torch.inference_mode():
        correct = sum(
            (net(x).argmax(1) == y).sum().item()
            for x, y in zip(images.split(1000), labels.split(1000), strict=True)
        )
    return correct / len(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data")
    args = parser.parse_args()
    torch.manual_seed(0)
    images, labels = load(args.data_dir, train=True)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    val, train = order[:5000], order[5000:]
    test_images, test_labels = load(args.data_dir, train=False)
    net = seed_cnn().to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    for batch in train[torch.randperm(len(train))].split(64):
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(net(images[batch]), labels[batch]).backward()
        optimizer.step()
    print(f"val acc {accuracy(net, images[val], labels[val]):.4f}")
    print(f"test acc {accuracy(net, test_images, test_labels):.4f}")


if __name__ == "__main__":
    main()
