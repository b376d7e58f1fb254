"""Sine to cosine: the seed's sequence regression, read sin(t) and predict cos(t) at every step."""

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from src.data.generated import GeneratedDataModule
from src.data.spec import DataSpec
from src.errors import ConfigError


class SineDataModule(GeneratedDataModule):
    """`num_samples` sequences of `seq_len` steps over a window of `duration` radians.

    Each sequence has its own phase and frequency, drawn uniformly from `phase_range` and
    `freq_range`: t = phase + freq * linspace(0, duration). Inputs are sin(t) plus Gaussian
    `noise`, targets cos(t); both have shape (seq_len, 1). The default phases, in
    [-pi/2, pi/2], start every wave where cos >= 0, so even the first step's target follows from
    its input; over a full turn the first steps are a guess between +-sqrt(1 - sin^2).
    """

    def __init__(
        self,
        num_samples: int = 2000,
        seq_len: int = 50,
        duration: float = math.pi,
        phase_range: Sequence[float] = (-math.pi / 2, math.pi / 2),
        freq_range: Sequence[float] = (0.5, 1.5),
        noise: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(num_samples, **kwargs)
        if seq_len < 2:
            raise ConfigError(f"data.seq_len must be 2 or more, got {seq_len}")
        if noise < 0:
            raise ConfigError(f"data.noise must be non-negative, got {noise}")
        for key, (low, high) in {"phase_range": phase_range, "freq_range": freq_range}.items():
            if low > high:
                raise ConfigError(f"data.{key} must be [low, high] with low <= high")
        self.seq_len, self.duration, self.noise = seq_len, duration, noise
        self.phase_range, self.freq_range = tuple(phase_range), tuple(freq_range)

    @property
    def spec(self) -> DataSpec:
        return DataSpec("regression", "sequence", (self.seq_len, 1), 1)

    def generate(self, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        def uniform(low: float, high: float) -> Tensor:
            return low + (high - low) * torch.rand(self.num_samples, 1, generator=generator)

        steps = torch.linspace(0, self.duration, self.seq_len)
        t = uniform(*self.phase_range) + uniform(*self.freq_range) * steps
        noise = self.noise * torch.randn(t.shape, generator=generator)
        return (torch.sin(t) + noise).unsqueeze(-1), torch.cos(t).unsqueeze(-1)
