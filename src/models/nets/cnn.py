"""The seed's two-convolution CNN for MNIST, generalised to any channel count and image size."""

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from src.errors import ConfigError
from src.models.nets.network import Network


class CNN(Network):
    """conv 16 (k5, s2, p2), ReLU, max-pool 2; conv 32 (k5, s1, p2), ReLU; linear to the classes.

    On 1x28x28 this is the seed exactly: 28 -> 14 -> 7, so the head is Linear(32 * 7 * 7, 10).
    """

    input_kinds = ("image",)

    def __init__(
        self, input_shape: Sequence[int], num_outputs: int, channels: Sequence[int] = (16, 32)
    ) -> None:
        super().__init__(input_shape, num_outputs)
        if len(channels) != 2 or min(channels) < 1:
            raise ConfigError(f"model.net.channels={list(channels)}: give two positive widths")
        first, second = channels
        self.features = nn.Sequential(
            nn.Conv2d(input_shape[0], first, kernel_size=5, stride=2, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(first, second, kernel_size=5, stride=1, padding=2),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            num_features = self.features(torch.zeros(1, *input_shape)).shape[1]
        self.head = nn.Linear(num_features, num_outputs)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))
