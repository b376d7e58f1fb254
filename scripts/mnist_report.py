"""MNIST through the template on this machine: accuracy and time of the seed recipes, and one
epoch of the seed CNN on the in-memory path vs the standard DataLoader path.

    python scripts/mnist_report.py [--data-dir ../shared/data] [--only cnn_epoch]

Prints a Markdown table and writes it to benchmarks/mnist_report.md.
"""

import argparse
import tempfile
import time
from pathlib import Path

from hydra import initialize_config_dir

from src.engine.config import CONFIG_DIR, PROJECT_ROOT, compose_run
from src.train import train

QUIET = ["extras.print_config=false", "callbacks.rich_progress_bar=null", "logger=none"]
RUNS = {
    "cnn_epoch_memory": ["experiment=mnist_cnn", "trainer.max_epochs=1", "data.loader=memory"],
    "cnn_epoch_dataloader": ["experiment=mnist_cnn", "trainer.max_epochs=1", "data.loader=torch"],
    "mnist_cnn": ["experiment=mnist_cnn"],
    "mnist_lstm": ["experiment=mnist_lstm"],
    "mnist_mlp": ["experiment=mnist_mlp"],
}


def run(name: str, data_dir: Path) -> dict[str, float]:
    overrides = [*RUNS[name], f"data.data_dir={data_dir}", *QUIET]
    with (
        tempfile.TemporaryDirectory() as out,
        initialize_config_dir(str(CONFIG_DIR), version_base="1.3"),
    ):
        cfg = compose_run(overrides, Path(out))
        start = time.perf_counter()
        metrics = train(cfg)
        metrics["wall_s"] = time.perf_counter() - start
        metrics["epochs"] = cfg.trainer.max_epochs
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=PROJECT_ROOT.parent / "shared" / "data")
    parser.add_argument("--only", nargs="*", choices=list(RUNS), default=list(RUNS))
    args = parser.parse_args()
    rows = ["| run | epochs | test acc | train s (incl. val) | wall s (data + train + test) |"]
    rows.append("|---|---|---|---|---|")
    for name in args.only:
        m = run(name, args.data_dir.resolve())
        cells = [name, m["epochs"], f"{m['test/acc']:.4f}", f"{m['time/train_s']:.1f}"]
        rows.append("| " + " | ".join(map(str, [*cells, f"{m['wall_s']:.1f}"])) + " |")
        print(rows[-1], flush=True)
    report = "\n".join(rows)
    out = PROJECT_ROOT / "benchmarks" / "mnist_report.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
