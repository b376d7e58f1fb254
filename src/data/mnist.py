"""MNIST: 28x28 grey handwritten digits, 60,000 for training and 10,000 for testing."""

from torch import Tensor
from torchvision.datasets import MNIST

from src.data.vision import VisionDataModule


class MNISTDataModule(VisionDataModule):
    """torchvision's MNIST, read from `<data_dir>/MNIST/raw/` (the four IDX files)."""

    dataset_class = MNIST
    image_shape = (1, 28, 28)
    num_classes = 10
    mean, std = (0.1307,), (0.3081,)
    files = "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte"
    train_files = ("MNIST/raw/train-images-idx3-ubyte", "MNIST/raw/train-labels-idx1-ubyte")
    test_files = ("MNIST/raw/t10k-images-idx3-ubyte", "MNIST/raw/t10k-labels-idx1-ubyte")

    @staticmethod
    def images_and_labels(dataset: MNIST) -> tuple[Tensor, Tensor]:
        return dataset.data.unsqueeze(1), dataset.targets
