"""torchvision's ResNet-18, adapted to the data's channels and classes, optionally pretrained."""

import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path
from urllib.error import URLError

import torch
from torch import Tensor, nn
from torchvision.models import ResNet18_Weights, resnet18

from src.errors import ConfigError
from src.models.nets.network import Network


class ResNet18(Network):
    """ResNet-18 with `in_channels` and `num_outputs` from the data.

    Args:
        small_input: the CIFAR stem (3x3 conv, stride 1, no max-pool) instead of ImageNet's
            (7x7 conv, stride 2, max-pool), which would shrink 32x32 images to 8x8 at once.
        pretrained: start from torchvision's ImageNet weights (downloaded once into the torch
            hub cache); layers whose shape the data changes keep their fresh initialisation.
        weights_path: start from a local state dict file instead.
    """

    input_kinds = ("image",)

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        small_input: bool = True,
        pretrained: bool = False,
        weights_path: str | None = None,
    ) -> None:
        super().__init__(input_shape, num_outputs)
        self.model = resnet18(num_classes=num_outputs)
        if small_input or input_shape[0] != 3:
            stride, kernel = (1, 3) if small_input else (2, 7)
            self.model.conv1 = nn.Conv2d(
                input_shape[0], 64, kernel, stride=stride, padding=kernel // 2, bias=False
            )
        if small_input:
            self.model.maxpool = nn.Identity()
        if weights_path or pretrained:
            self._load_matching(
                _local_weights(weights_path) if weights_path else _imagenet_weights()
            )

    def _load_matching(self, state_dict: dict[str, Tensor]) -> None:
        own = self.model.state_dict()
        matching = {k: v for k, v in state_dict.items() if k in own and own[k].shape == v.shape}
        self.model.load_state_dict(matching, strict=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def _local_weights(path: str) -> dict[str, Tensor]:
    """A state dict file, read as data only (`weights_only=True`: a pickle of code is refused)."""
    reason = None
    if not Path(path).is_file():
        reason = "no such file"
    elif not zipfile.is_zipfile(path):
        reason = "cannot be used: it is truncated, or not a file torch.save wrote"
    else:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:  # what weights_only refuses
            reason = "cannot be used: it holds objects other than weights, which could run code"
    raise ConfigError(
        f"model.net.weights_path={path}: {reason}; give a state dict saved with torch.save"
    )


def _imagenet_weights() -> dict[str, Tensor]:
    weights = ResNet18_Weights.DEFAULT
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except (URLError, OSError) as error:
        raise ConfigError(
            f"model.net.pretrained=true: ResNet-18 weights are not cached at {cached} and could "
            f"not be downloaded ({error}); download {weights.url} to that path when online, or "
            f"pass model.net.weights_path=<a local state dict>"
        ) from error
