"""VGG built from a cfg list: numbers are 3x3 conv widths, 'M' a 2x2 max-pool."""

from collections.abc import Sequence

from torch import Tensor, nn

from src.errors import ConfigError
from src.models.nets.network import Network

CONFIGS: dict[int, list[int | str]] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", *[256] * 4, "M", *[512] * 4, "M", *[512] * 4, "M"],
}


def make_layers(
    cfg: Sequence[int | str], in_channels: int, image_size: int, batch_norm: bool
) -> nn.Sequential:
    """Conv (+ BatchNorm) + ReLU per number, max-pool per 'M' while the image is 2 pixels or more
    (so 28x28 inputs keep a 1x1 map through VGG's five pools)."""
    layers: list[nn.Module] = []
    for item in cfg:
        if item == "M":
            if image_size >= 2:
                layers.append(nn.MaxPool2d(2))
                image_size //= 2
            continue
        layers.append(nn.Conv2d(in_channels, int(item), kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(int(item)))
        layers.append(nn.ReLU(inplace=True))
        in_channels = int(item)
    return nn.Sequential(*layers)


class VGG(Network):
    """VGG-11/13/16/19 for small images: the conv stack, global average pool, one linear layer."""

    input_kinds = ("image",)

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        depth: int = 16,
        batch_norm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(input_shape, num_outputs)
        if depth not in CONFIGS:
            raise ConfigError(f"model.net.depth must be one of {sorted(CONFIGS)}, got {depth}")
        cfg = CONFIGS[depth]
        self.features = make_layers(cfg, input_shape[0], min(input_shape[1:]), batch_norm)
        width = next(item for item in reversed(cfg) if item != "M")
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(width, num_outputs),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
