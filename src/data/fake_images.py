"""Random images shaped like a real data set: image models offline (smoke tests, benchmarks)."""

from collections.abc import Sequence

import torch
from torch import Tensor

from src.data.generated import GeneratedDataModule
from src.data.spec import DataSpec
from src.errors import ConfigError


class FakeImagesDataModule(GeneratedDataModule):
    """`num_samples` standard-normal images of `image_shape` (CIFAR-10's by default) with uniform
    random labels among `num_classes`: the shapes and costs of real data, nothing to learn."""

    def __init__(
        self,
        num_samples: int = 2048,
        image_shape: Sequence[int] = (3, 32, 32),
        num_classes: int = 10,
        **kwargs,
    ) -> None:
        super().__init__(num_samples, **kwargs)
        if len(image_shape) != 3 or min(image_shape) < 1 or num_classes < 2:
            raise ConfigError(
                "data.image_shape must be [channels, height, width] and data.num_classes >= 2"
            )
        self.image_shape, self.num_classes = tuple(image_shape), num_classes

    @property
    def spec(self) -> DataSpec:
        return DataSpec("classification", "image", self.image_shape, self.num_classes)

    def generate(self, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        images = torch.randn(self.num_samples, *self.image_shape, generator=generator)
        labels = torch.randint(self.num_classes, (self.num_samples,), generator=generator)
        return images, labels
