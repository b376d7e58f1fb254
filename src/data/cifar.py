"""CIFAR-10: 32x32 colour images of 10 classes, 50,000 for training and 10,000 for testing."""

import torch
from torch import Tensor
from torchvision.datasets import CIFAR10

from src.data.vision import VisionDataModule


class CIFAR10DataModule(VisionDataModule):
    """torchvision's CIFAR-10, read from `<data_dir>/cifar-10-batches-py/` (python pickles)."""

    dataset_class = CIFAR10
    image_shape = (3, 32, 32)
    num_classes = 10
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    files = (
        "cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta} "
        "(extracted from cifar-10-python.tar.gz)"
    )
    train_files = ("cifar-10-batches-py/data_batch_1..5",) * 2  # images and labels
    test_files = ("cifar-10-batches-py/test_batch",) * 2

    @staticmethod
    def images_and_labels(dataset: CIFAR10) -> tuple[Tensor, Tensor]:
        images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()
        return images, torch.tensor(dataset.targets)
