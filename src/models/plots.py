"""The pictures the task modules draw with matplotlib (files only, no display)."""

from collections.abc import Callable, Sequence

import matplotlib

matplotlib.use("Agg")  # files only: no display needed, none opened

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import Tensor
from torchvision.utils import make_grid


def image_grid(
    images: Tensor,
    predicted: Tensor,
    true: Tensor,
    classes: Sequence[str] = (),
    columns: int = 8,
) -> Figure:
    """Images tiled in one picture, each under its predicted and true label (red when wrong), by
    name when `classes` names them.

    One image drawn once, the labels as text: a grid of subplots would cost a second or more.
    """
    count, channels, height, width = images.shape
    low = images.amin(dim=(1, 2, 3), keepdim=True)
    high = images.amax(dim=(1, 2, 3), keepdim=True)
    pad = max(height // 3, 8)  # room for a label above each image
    grid = make_grid((images - low) / (high - low + 1e-8), nrow=columns, padding=pad, pad_value=1)
    rows = -(-count // columns)
    figure, ax = plt.subplots(figsize=(1.2 * columns, 1.3 * rows))
    ax.imshow(grid.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray" if channels == 1 else None)
    for index, (guess, label) in enumerate(zip(predicted.tolist(), true.tolist(), strict=False)):
        row, column = divmod(index, columns)
        x, y = pad + column * (width + pad) + width / 2, pad + row * (height + pad) - 1
        color = "tab:green" if guess == label else "tab:red"
        text = f"{classes[guess]} / {classes[label]}" if classes else f"{guess} / {label}"
        ax.text(x, y, text, ha="center", va="bottom", fontsize=7, color=color)
    ax.set_title("predicted / true", fontsize=8)
    ax.axis("off")
    figure.tight_layout()
    return figure


def sequence_curves(inputs: Tensor, targets: Tensor, predictions: Tensor, count: int = 4) -> Figure:
    """Input, target and predicted curves of the first `count` sequences, one panel each."""
    count = min(count, len(inputs))
    figure, axes = plt.subplots(1, count, figsize=(4 * count, 3), squeeze=False)
    for ax, x, y, p in zip(axes.flat, inputs, targets, predictions, strict=False):
        ax.plot(x[:, 0].numpy(), label="input", color="tab:gray")
        ax.plot(y[:, 0].numpy(), label="target", color="tab:blue")
        ax.plot(p[:, 0].numpy(), "--", label="prediction", color="tab:red")
        ax.set_xlabel("step")
    axes.flat[0].legend(fontsize=8)
    figure.tight_layout()
    return figure


def fitted_line(x: Tensor, y: Tensor, slope: float, intercept: float) -> Figure:
    """The data as points and the learned line y = slope * x + intercept."""
    figure, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(x.numpy(), y.numpy(), s=8, alpha=0.6, label="data")
    ends = x.new_tensor([x.min(), x.max()])
    ax.plot(ends.numpy(), (slope * ends + intercept).numpy(), color="tab:red", label="fit")
    ax.set_title(f"learned y = {slope:.3f} x + {intercept:.3f}")
    ax.legend()
    figure.tight_layout()
    return figure


def decision_boundary(
    predict: Callable[[Tensor], Tensor], points: Tensor, labels: Tensor, title: str
) -> Figure:
    """2-D `points` coloured by their `labels` over the regions `predict` (points -> class
    indices) assigns to each class."""
    low, high = points.min(0).values, points.max(0).values
    margin = 0.1 * (high - low)
    (x0, y0), (x1, y1) = (low - margin).tolist(), (high + margin).tolist()
    grid_x, grid_y = torch.meshgrid(
        torch.linspace(x0, x1, 200), torch.linspace(y0, y1, 200), indexing="xy"
    )
    regions = predict(torch.stack([grid_x.flatten(), grid_y.flatten()], dim=1))
    figure, ax = plt.subplots(figsize=(5, 4))
    num_classes = int(max(labels.max(), regions.max())) + 1
    ax.contourf(
        grid_x.numpy(),
        grid_y.numpy(),
        regions.reshape(grid_x.shape).numpy(),
        levels=[level - 0.5 for level in range(num_classes + 1)],
        cmap="coolwarm",
        alpha=0.3,
    )
    ax.scatter(
        points[:, 0].numpy(),
        points[:, 1].numpy(),
        c=labels.numpy(),
        s=10,
        cmap="coolwarm",
        vmin=0,
        vmax=num_classes - 1,
        edgecolors="k",
        linewidths=0.3,
    )
    ax.set_title(title)
    figure.tight_layout()
    return figure
