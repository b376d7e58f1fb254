"""What a run prints: the composed config as a tree, Lightning's logs, a final summary."""

import logging
import warnings
from collections.abc import Mapping
from pathlib import Path

import rich.syntax
import rich.tree
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

FIRST_SECTIONS = ("data", "model", "trainer", "callbacks", "logger", "paths")


def print_config_tree(cfg: DictConfig, save_to: Path | None = None) -> None:
    """Print the config as a tree of sections (main ones first); optionally save the text."""
    tree = rich.tree.Tree("CONFIG", style="bold")
    sections = [s for s in FIRST_SECTIONS if s in cfg] + [s for s in cfg if s not in FIRST_SECTIONS]
    for section in sections:
        node = cfg[section]
        text = OmegaConf.to_yaml(node, resolve=True) if isinstance(node, DictConfig) else str(node)
        tree.add(section, style="bold").add(rich.syntax.Syntax(text, "yaml"))
    Console().print(tree)
    if save_to is not None:
        with open(save_to, "w") as file:
            Console(file=file, width=120).print(tree)


def route_lightning_logs() -> None:
    """Send Lightning's log records only through Hydra's handlers (console and the run's log
    file), not also through the console handler Lightning adds on import; drop its product tips
    and a deprecation notice about its own code (Lightning 2.6 builds the `LeafSpec` that torch
    2.14 deprecates), which users can do nothing about."""
    logging.getLogger("lightning").handlers.clear()
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: not record.getMessage().startswith("💡 Tip")
    )
    warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)`", FutureWarning)


def print_summary(metrics: Mapping[str, float], best_checkpoint: str | None) -> None:
    """A table of final metrics (epoch values only), then the best checkpoint's path."""
    table = Table(title="Final metrics", show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name in sorted(metrics):
        if not name.endswith(("_step", "_epoch")):
            table.add_row(name, f"{metrics[name]:.4g}")
    console = Console()
    console.print(table)
    console.print(f"Best checkpoint: {best_checkpoint or 'none saved'}")
