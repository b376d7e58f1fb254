"""What a run prints: a first screen saying what runs, Lightning's logs, the final metrics.

Piped or logged output (CI, `tee`, SLURM logs) is never cut to a terminal's width: paths,
overrides and values print whole.
"""

import logging
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import rich.syntax
import rich.tree
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

FIRST_SECTIONS = ("data", "model", "trainer", "callbacks", "logger", "paths")
# columns for the consoles Lightning makes when the output is not a terminal (rich's own: 80)
PIPED_COLUMNS = 160


def console(file=None) -> Console:
    """A rich console as wide as the terminal, or unlimited when the output is not a terminal."""
    stream = file or sys.stdout
    return Console(file=stream, width=None if stream.isatty() else 100_000)


def config_tree(cfg: DictConfig) -> rich.tree.Tree:
    """The config as a tree of sections, the main ones first."""
    tree = rich.tree.Tree("CONFIG", style="bold")
    sections = [s for s in FIRST_SECTIONS if s in cfg] + [s for s in cfg if s not in FIRST_SECTIONS]
    for section in sections:
        node = cfg[section]
        text = OmegaConf.to_yaml(node, resolve=True) if isinstance(node, DictConfig) else str(node)
        tree.add(section, style="bold").add(rich.syntax.Syntax(text, "yaml"))
    return tree


def show_run(cfg: DictConfig, what: str, from_checkpoint: Sequence[str] = ()) -> None:
    """Save the whole config as `config_tree.log` in the run directory, and print the first
    screen: `what` runs (the config groups chosen, or taken `from_checkpoint`; the saved config
    a rerun runs), the command line's overrides and where the run writes;
    `extras.print_config=tree` prints the whole tree instead, `false` nothing."""
    run_dir = Path(cfg.paths.output_dir)
    tree = config_tree(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "config_tree.log", "w") as file:
        Console(file=file, width=120).print(tree)
    mode = cfg.extras.get("print_config", "summary")
    out = console()
    if mode == "tree":
        out.print(tree)
    elif mode == "summary":
        hydra = HydraConfig.get()
        chosen = dict(hydra.runtime.choices) | {group: "as trained" for group in from_checkpoint}
        groups = [group for group in ("data", "model", "trainer", "logger") if chosen.get(group)]
        choices = ", ".join(f"{group}={chosen[group]}" for group in groups)
        if not choices:  # a config saved by an earlier run (rerun=): no config groups
            saved = [s.path for s in hydra.runtime.config_sources if s.provider == "main"]
            choices = f"the config saved in {saved[0].removeprefix('file://')}" if saved else ""
        overrides = " ".join(o for o in hydra.overrides.task if not o.startswith("hydra."))
        out.print(f"{what}: {choices}", highlight=False)
        if overrides:
            out.print(f"Overrides: {overrides}", highlight=False)
        out.print(
            f"Run directory: {run_dir} (whole config: config_tree.log; "
            f"extras.print_config=tree prints it)",
            highlight=False,
        )


def shape_lightning_output() -> None:
    """What Lightning prints: its log records only through Hydra's handlers (console and the
    run's log file), not also through the one Lightning adds on import, at the levels
    `hydra.job_logging.loggers` sets (Lightning resets its own to INFO when imported); its rich
    model summary and progress bar `PIPED_COLUMNS` wide when piped (`COLUMNS` still decides).
    Dropped, as users can do nothing about them: its product tips, its note that the configured
    model summary replaces its default one, a deprecation notice about its own code (Lightning
    2.6 builds the `LeafSpec` that torch 2.14 deprecates; torchdata 0.11 calls the `set_vital`
    that torch deprecates), and its warning that a checkpoint directory is not empty (only a
    resume enters one: `RunDirectory`)."""
    logging.getLogger("lightning").handlers.clear()
    if HydraConfig.initialized():
        for name, settings in (HydraConfig.get().job_logging.get("loggers") or {}).items():
            if "level" in settings:
                logging.getLogger(name).setLevel(settings.level)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: not record.getMessage().startswith(("💡 Tip", "Trainer already configured"))
    )
    if not sys.stdout.isatty():
        os.environ.setdefault("COLUMNS", str(PIPED_COLUMNS))
    warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)`", FutureWarning)
    warnings.filterwarnings("ignore", r"Checkpoint directory .* exists and is not empty")
    warnings.filterwarnings("ignore", r"'set_vital' is deprecated", UserWarning)  # torchdata's


def print_final_metrics(metrics: Mapping[str, float], checkpoint: str, label: str) -> None:
    """A table of final metrics (epoch values only), then `label`: the checkpoint's path."""
    table = Table(title="Final metrics", show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name in sorted(metrics):
        if not name.endswith(("_step", "_epoch")):
            table.add_row(name, f"{metrics[name]:.4g}")
    out = console()
    out.print(table)
    out.print(f"{label}: {checkpoint}", highlight=False)
