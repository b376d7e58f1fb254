"""The template's speed against plain PyTorch, measured side by side in one process.

python scripts/benchmark.py --data-dir ../shared/data                # all sections
python scripts/benchmark.py --data-dir ../shared/data --sections training --cases mnist_cnn

Sections (results printed and written to benchmarks/benchmark.{md,csv}):
- training: per case, the template (Trainer + datamodule + module, with the default callbacks,
  progress bar and CSV logger) and the seeds' plain PyTorch loop of the same network, data, batch
  size, optimizer and seed, interleaved `--repeats` times. Both fit the same epochs (training and
  one validation pass per epoch); samples/s of fitting, the time ratio template/plain, and the
  test accuracy (or MSE) each reached. The plain loop runs twice: as the seeds wrote it, and with
  the template's runtime options (channels-last convnets), whose gap to the template is the
  framework's own cost per step. MNIST cases also run the seeds' torchvision Dataset +
  DataLoader loop (all 60,000 training images, training only), compared in samples/s.
- data: one MNIST training epoch of batches from the in-memory loader, from the seeds'
  torchvision Dataset + DataLoader, and from slicing one preloaded tensor.
- image_folder: one epoch over MNIST's test images saved as PNGs in class subfolders, decoded by
  2 workers: `data=image_folder`'s loader against a plain DataLoader over `ImageFolder`.
- logging: one epoch of the seed CNN on MNIST with each logger setting, interleaved.
- accuracy: `experiment=mnist_cnn_fast` through the template: seconds of training, test accuracy.
- startup: seconds from command to a config error, to a composed config (without torch), and to
  the end of the first training step of the default run.
- process: whole commands, wall seconds: `experiment=mnist_cnn trainer.max_epochs=1` against
  scripts/plain_mnist_cnn.py (the same network, data and epoch as a plain script), where the
  template's remaining time goes (imports, fit, test, the rest), and the default run.
- threads: the default run's training seconds on a quiet machine and beside one busy process,
  with `threads=auto` and with torch's default (every core); a 4-job sweep of it with joblib
  (`n_jobs=2`) against one job at a time.
- gpu (a CUDA machine only; not part of the default sections): images/s of training cnn (MNIST
  shaped), vgg16 and resnet18 (CIFAR shaped) on random images, fp32 eager against bf16 +
  channels-last + compile, and the seconds `experiment=mnist_cnn_fast` trains with the latter.
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from hydra import initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from src.engine.config import CONFIG_DIR, compose_run  # noqa: E402
from src.engine.resolvers import register_resolvers  # noqa: E402
from src.train import train  # noqa: E402

# name: (overrides, epochs, training batches per epoch or None for all)
CASES = {
    "points_mlp": (["data=points", "model=mlp"], 10, None),
    "mnist_cnn": (["experiment=mnist_cnn"], 1, None),
    "mnist_lstm": (["experiment=mnist_lstm"], 1, None),
    "sine_rnn": (["experiment=sine_rnn"], 5, None),
    "fake_images_vgg16": (["data=fake_images", "model=vgg"], 1, 5),
}
LOGGING = {
    "none": ["logger=none"],
    "csv + tensorboard": ["logger=[csv,tensorboard]"],
    "many (csv, tensorboard, wandb offline)": ["logger=many"],
}
GPU_CASES = {
    "cnn, MNIST-shaped": ["data=fake_images", "data.image_shape=[1,28,28]", "model=cnn"],
    "vgg16, CIFAR-shaped": ["data=fake_images", "model=vgg"],
    "resnet18, CIFAR-shaped": ["data=fake_images", "model=resnet18"],
}
GPU_SETTINGS = {
    "fp32 eager": ["trainer.precision=32-true", "model.channels_last=false"],
    "bf16 + channels-last + compile": [
        "trainer.precision=bf16-mixed",
        "model.channels_last=true",
        "model.compile=true",
    ],
}
Row = dict[str, str | float]


def compose(overrides: list[str], output_dir: Path) -> DictConfig:
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose_run(overrides, output_dir, "train")


def case_overrides(name: str, data_dir: str) -> tuple[list[str], int, int | None]:
    overrides, epochs, batches = CASES[name]
    overrides = [*overrides, f"trainer.max_epochs={epochs}", "extras.print_config=false"]
    if "mnist" in name:
        overrides.append(f"data.data_dir={data_dir}")
    if batches:
        overrides += [f"+trainer.limit_train_batches={batches}", "+trainer.limit_val_batches=2"]
    return overrides, epochs, batches


def template_run(overrides: list[str], workdir: Path) -> tuple[float, dict[str, float]]:
    """Fit and test through the template; the Timer's fitting seconds and the final metrics."""
    output_dir = Path(tempfile.mkdtemp(dir=workdir))
    metrics = train(compose(overrides, output_dir))
    return metrics["time/train_s"], metrics


def plain_run(
    overrides: list[str], workdir: Path, epochs: int, batches: int | None, options: bool
) -> tuple[float, float]:
    """The seeds' hand-written loop over the same preloaded tensors, network and optimizer (with
    `options`, also the template's channels-last convnets): seconds of fitting (training plus one
    validation pass per epoch) and the test metric."""
    cfg = compose(overrides, workdir)
    torch.manual_seed(cfg.seed)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    spec = datamodule.spec
    net = instantiate(cfg.model.net, input_shape=spec.input_shape, num_outputs=spec.num_outputs)
    memory_format = torch.channels_last if options and cfg.model.channels_last else None
    net.to(memory_format=memory_format or torch.contiguous_format)
    optimizer = instantiate(cfg.model.optimizer, params=net.parameters())
    classify = spec.task == "classification"
    loss_fn = F.cross_entropy if classify else F.mse_loss
    augment = datamodule.batch_transform("train")
    clip = cfg.trainer.get("gradient_clip_val")
    inputs, targets = datamodule.splits["train"]
    generator = torch.Generator().manual_seed(cfg.seed)
    start = time.perf_counter()
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(inputs), generator=generator).split(cfg.data.batch_size)
        for index in order[:batches]:
            x, y = inputs[index], targets[index]
            if augment:
                x, y = augment((x, y))
            if memory_format:
                x = x.contiguous(memory_format=memory_format)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), y)
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
            optimizer.step()
        evaluate(
            net, datamodule.splits["val"], cfg.data.batch_size, classify, 2 if batches else None
        )
    seconds = time.perf_counter() - start
    return seconds, evaluate(net, datamodule.splits["test"], cfg.data.batch_size, classify)


def dataloader_run(overrides: list[str], workdir: Path, epochs: int, data_dir: str) -> float:
    """The seeds' MNIST loop as written: torchvision's Dataset (per-sample ToTensor and
    Normalize) through a shuffling DataLoader, all 60,000 training images; samples/s of
    training."""
    from torch.utils.data import DataLoader

    cfg = compose(overrides, workdir)
    torch.manual_seed(cfg.seed)
    net = instantiate(cfg.model.net, input_shape=(1, 28, 28), num_outputs=10)
    optimizer = instantiate(cfg.model.optimizer, params=net.parameters())
    loader = DataLoader(seeds_mnist(data_dir), batch_size=cfg.data.batch_size, shuffle=True)
    start = time.perf_counter()
    for _ in range(epochs):
        for x, y in loader:
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(net(x), y).backward()
            optimizer.step()
    return epochs * len(loader.dataset) / (time.perf_counter() - start)


def seeds_mnist(data_dir: str) -> "torch.utils.data.Dataset":
    """MNIST's training set as the seeds load it: per-sample ToTensor and Normalize."""
    from torchvision import datasets, transforms

    normalise = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
    )
    return datasets.MNIST(data_dir, train=True, transform=normalise)


def evaluate(net, split, batch_size: int, classify: bool, batches: int | None = None) -> float:
    """Accuracy (classification) or MSE of `net` on a split, batch by batch."""
    net.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        pairs = zip(split[0].split(batch_size), split[1].split(batch_size), strict=True)
        for x, y in list(pairs)[:batches]:
            outputs = net(x)
            if classify:
                total += (outputs.argmax(-1) == y).sum().item()
            else:
                total += F.mse_loss(outputs, y, reduction="sum").item() / y[0].numel()
            count += len(y)
    return total / count


def training(args: argparse.Namespace, workdir: Path) -> list[Row]:
    rows = []
    for name in args.cases:
        overrides, epochs, batches = case_overrides(name, args.data_dir)
        cfg = compose(overrides, workdir)
        num_train = _train_samples(cfg, epochs, batches)
        steps = _train_steps(cfg, epochs, batches)
        times: dict[str, list[float]] = {"template": [], "plain": [], "plain + options": []}
        dataloader_rates = []
        for _ in range(args.repeats):
            seconds, plain_metric = plain_run(overrides, workdir, epochs, batches, options=False)
            times["plain"].append(seconds)
            times["plain + options"].append(
                plain_run(overrides, workdir, epochs, batches, options=True)[0]
            )
            if "mnist" in name:
                dataloader_rates.append(dataloader_run(overrides, workdir, epochs, args.data_dir))
            seconds, metrics = template_run(overrides, workdir)
            times["template"].append(seconds)
        metric = "test/acc" if "test/acc" in metrics else "test/mse"
        median = {key: statistics.median(values) for key, values in times.items()}
        row: Row = {
            "case": name,
            "template samples/s": num_train / median["template"],
            "plain samples/s": num_train / median["plain"],
            "template / plain time": median["template"] / median["plain"],
            "template / plain + options time": median["template"] / median["plain + options"],
            "framework ms/step": 1000 * (median["template"] - median["plain + options"]) / steps,
            f"template {metric}": metrics[metric],
            f"plain {metric}": plain_metric,
        }
        if dataloader_rates:
            rate = statistics.median(dataloader_rates)
            row["DataLoader loop samples/s"] = rate
            row["template vs DataLoader loop speed"] = row["template samples/s"] / rate
        rows.append(row)
        print(rows[-1], flush=True)
    return rows


def _train_samples(cfg: DictConfig, epochs: int, batches: int | None) -> int:
    per_epoch = len(_train_split(cfg))
    return epochs * (min(per_epoch, batches * cfg.data.batch_size) if batches else per_epoch)


def _train_steps(cfg: DictConfig, epochs: int, batches: int | None) -> int:
    per_epoch = -(-len(_train_split(cfg)) // cfg.data.batch_size)
    return epochs * (min(per_epoch, batches) if batches else per_epoch)


def _train_split(cfg: DictConfig) -> torch.Tensor:
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    return datamodule.splits["train"][0]


def data_path(args: argparse.Namespace, workdir: Path) -> list[Row]:
    """Batches of one MNIST training epoch (batch 64) through each path."""
    from torch.utils.data import DataLoader

    from src.data.mnist import MNISTDataModule

    datamodule = MNISTDataModule(data_dir=args.data_dir, batch_size=64)
    datamodule.setup("fit")
    inputs, targets = datamodule.splits["train"]
    seeds_dataset = seeds_mnist(args.data_dir)

    def in_memory() -> int:
        return sum(len(x) for x, _ in datamodule.train_dataloader())

    def dataloader() -> int:
        return sum(len(x) for x, _ in DataLoader(seeds_dataset, batch_size=64, shuffle=True))

    def slicing() -> int:
        for index in torch.randperm(len(inputs)).split(64):
            _ = inputs[index], targets[index]
        return len(inputs)

    rates = {"torchvision DataLoader": _best_rate(dataloader, args.repeats)}
    fast_paths = {"in-memory loader": in_memory, "tensor slicing": slicing}
    for _ in range(20):  # a tenth of a second each: best of 20, interleaved, against noise
        for name, count_samples in fast_paths.items():
            rates[name] = max(rates.get(name, 0.0), _best_rate(count_samples, 1))
    return [
        {"path": name, "samples/s": rate, "vs slicing": rates["tensor slicing"] / rate}
        for name, rate in rates.items()
    ]


def image_folder(args: argparse.Namespace, workdir: Path) -> list[Row]:
    """Images/s of one epoch over a folder of PNGs (MNIST's 10,000 test images, in class
    subfolders), decoded by 2 workers: `data=image_folder`'s training loader against a plain
    `DataLoader` over torchvision's `ImageFolder` with the same transform, interleaved."""
    from torch.utils.data import DataLoader
    from torchvision.datasets import MNIST, ImageFolder

    from src.data.image_folder import ImageFolderDataModule

    root = workdir / "mnist_png"
    for index, (image, label) in enumerate(MNIST(args.data_dir, train=False)):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        image.save(root / str(label) / f"{index}.png")
    options = {"batch_size": 64, "num_workers": 2}
    datamodule = ImageFolderDataModule(str(root), (28, 28), 1, (0.1307,), (0.3081,), **options)
    datamodule.setup()
    plain = ImageFolder(str(root), transform=datamodule.transform(train=True))
    loaders = {
        "data=image_folder (StatefulDataLoader, seeded samples)": datamodule.train_dataloader,
        "plain DataLoader over ImageFolder": lambda: DataLoader(plain, shuffle=True, **options),
    }
    rates: dict[str, float] = {}
    for _ in range(args.repeats):
        for name, loader in loaders.items():
            rate = _best_rate(lambda loader=loader: sum(len(x) for x, _ in loader()), 1)
            rates[name] = max(rates.get(name, 0.0), rate)
    plain_rate = rates["plain DataLoader over ImageFolder"]
    return [
        {"loader (2 workers, batch 64)": name, "images/s": rate, "vs plain": rate / plain_rate}
        for name, rate in rates.items()
    ]


def _best_rate(count_samples: Callable[[], int], repeats: int) -> float:
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        samples = count_samples()
        best = max(best, samples / (time.perf_counter() - start))
    return best


def logging_overhead(args: argparse.Namespace, workdir: Path) -> list[Row]:
    overrides, _, _ = case_overrides("mnist_cnn", args.data_dir)
    times: dict[str, list[float]] = {name: [] for name in LOGGING}
    for _ in range(args.repeats):
        for name, logger in LOGGING.items():
            times[name].append(template_run([*overrides, *logger], workdir)[0])
    base = statistics.median(times["none"])
    return [
        {"loggers": name, "epoch s": statistics.median(t), "vs none": statistics.median(t) / base}
        for name, t in times.items()
    ]


def accuracy(args: argparse.Namespace, workdir: Path) -> list[Row]:
    """The template's fastest recipe to 98% MNIST test accuracy on a CPU."""
    overrides = ["experiment=mnist_cnn_fast", f"data.data_dir={args.data_dir}"]
    seconds, metrics = template_run([*overrides, "extras.print_config=false"], workdir)
    return [{"recipe": overrides[0], "train s": seconds, "test/acc": metrics["test/acc"]}]


def startup(args: argparse.Namespace, workdir: Path) -> list[Row]:
    """Wall seconds of whole commands, from start to exit."""
    compose_only = (  # prints the seconds of its imports, then of composing train.yaml
        "import sys, time; start = time.perf_counter(); "
        "from hydra import compose, initialize_config_dir; "
        "from src.engine.config import CONFIG_DIR; "
        "from src.engine.resolvers import register_resolvers; "
        "register_resolvers(); "
        "imported = time.perf_counter(); "
        "initialize_config_dir(str(CONFIG_DIR), version_base='1.3'); compose('train'); "
        "assert 'torch' not in sys.modules; "
        "print(imported - start, time.perf_counter() - imported)"
    )
    train = [sys.executable, "src/train.py"]
    commands = {
        "error: model=nope": [*train, "model=nope"],
        "error: trainer.max_epochs=abc": [*train, "trainer.max_epochs=abc"],
        "compose train.yaml, no torch (python -c)": [sys.executable, "-c", compose_only],
        "default run to its first training step": [*train, "trainer.max_steps=1", "test=false"],
    }
    rows = []
    for name, command in commands.items():
        seconds = []
        for repeat in range(args.repeats):
            run_dir = workdir / f"startup_{len(rows)}_{repeat}"  # a run dir is never entered twice
            extra = [f"hydra.run.dir={run_dir}"] if command[1] == "src/train.py" else []
            start = time.perf_counter()
            result = subprocess.run(
                [*command, *extra], cwd=PROJECT_ROOT, capture_output=True, text=True
            )
            seconds.append(time.perf_counter() - start)
            if result.returncode != int(name.startswith("error")):
                raise SystemExit(f"{name}: exit code {result.returncode}\n{result.stderr[-3000:]}")
        row: Row = {"command": name, "seconds": min(seconds), "exit code": result.returncode}
        if "compose" in name:
            imports, compose = result.stdout.split()[-2:]
            row |= {"of which imports s": float(imports), "of which compose s": float(compose)}
        rows.append(row)
    return rows


def timed(command: list[str]) -> float:
    """Wall seconds of a whole command, which must succeed."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def process(args: argparse.Namespace, workdir: Path) -> list[Row]:
    """Whole commands from start to exit, best of `--repeats`, interleaved."""
    train = [sys.executable, "src/train.py", "extras.print_config=false"]
    mnist = [
        *train,
        "experiment=mnist_cnn",
        "trainer.max_epochs=1",
        f"data.data_dir={args.data_dir}",
    ]
    commands = {
        "template": mnist,
        "plain": [sys.executable, "scripts/plain_mnist_cnn.py", f"--data-dir={args.data_dir}"],
        "imports": [
            sys.executable,
            "-c",
            "import src.train, src.engine.trainer, src.callbacks.figures; "
            "src.engine.machine.skip_collection_at_exit()",  # as the entry points exit
        ],
        "default run": train,
    }
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    stages: list[dict[str, float]] = []
    for repeat in range(args.repeats):
        for name, command in commands.items():
            run_dir = workdir / f"process_{name.replace(' ', '_')}_{repeat}"
            extra = [f"hydra.run.dir={run_dir}"] if command[1] == "src/train.py" else []
            seconds[name].append(timed([*command, *extra]))
            if name == "template":
                stages.append(json.loads((run_dir / "metrics.json").read_text()))
    best = {name: min(values) for name, values in seconds.items()}
    fit = min(m["time/train_s"] for m in stages)
    test = min(m["time/test_s"] for m in stages)
    rest = best["template"] - best["imports"] - fit - test
    return [
        {"command": "experiment=mnist_cnn trainer.max_epochs=1", "seconds": best["template"]},
        {
            "command": "scripts/plain_mnist_cnn.py (same network, data, epoch)",
            "seconds": best["plain"],
        },
        {"command": "template / plain", "seconds": best["template"] / best["plain"]},
        {"command": "  of which: python + imports", "seconds": best["imports"]},
        {"command": "  of which: fit (training + validation)", "seconds": fit},
        {"command": "  of which: test of the best checkpoint", "seconds": test},
        {"command": "  of which: the rest (config, data, checkpoints, figures)", "seconds": rest},
        {"command": "default run (python src/train.py)", "seconds": best["default run"]},
    ]


def threads(args: argparse.Namespace, workdir: Path) -> list[Row]:
    """Training seconds of the default run beside a busy process, and a parallel sweep."""
    train = [sys.executable, "src/train.py", "extras.print_config=false"]

    def train_seconds(setting: str, busy: bool, repeat: int) -> float:
        run_dir = workdir / f"threads_{setting}_{busy}_{repeat}"
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
        try:
            timed([*train, f"threads={setting}", f"hydra.run.dir={run_dir}"])
        finally:
            if spinner:
                spinner.kill()
        return json.loads((run_dir / "metrics.json").read_text())["time/train_s"]

    settings = {"auto": "auto", f"{os.cpu_count()} (torch's default)": str(os.cpu_count())}
    rows: list[Row] = []
    for name, setting in settings.items():
        quiet, busy = [], []
        for repeat in range(args.repeats):
            quiet.append(train_seconds(setting, False, repeat))
            busy.append(train_seconds(setting, True, repeat))
        quiet_s, busy_s = statistics.median(quiet), statistics.median(busy)
        rows.append(
            {
                "default run, threads=": name,
                "quiet train s": quiet_s,
                "one busy process train s": busy_s,
                "busy / quiet": busy_s / quiet_s,
            }
        )
    sweep = [*train[:2], "-m", *train[2:], "model.optimizer.lr=0.1,0.03,0.01,0.003"]
    launchers = {
        "4 jobs, one at a time": [],
        "4 jobs, joblib n_jobs=2": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    }
    walls: dict[str, list[float]] = {name: [] for name in launchers}
    for repeat in range(args.repeats):
        for name, options in launchers.items():
            sweep_dir = workdir / f"sweep_{len(options)}_{repeat}"
            walls[name].append(timed([*sweep, *options, f"hydra.sweep.dir={sweep_dir}"]))
    for name, values in walls.items():
        rows.append(
            {"default run, threads=": f"auto, sweep of {name}", "sweep wall s": min(values)}
        )
    return rows


def gpu(args: argparse.Namespace, workdir: Path) -> list[Row]:
    """Training images/s on a CUDA GPU: the time of epochs 2 and 3 (runs of 1 and 3 epochs of
    16,384 images, batch 256, subtracted: compilation and warm-up cancel out)."""
    if not torch.cuda.is_available():
        raise SystemExit("--sections gpu needs a CUDA GPU")
    common = ["trainer=gpu", "data.num_samples=20480", "data.batch_size=256", "test=false"]
    common += ["callbacks.figures=null", "extras.print_config=false"]
    rows: list[Row] = []
    for case, overrides in GPU_CASES.items():
        row: Row = {"case": case}
        for setting, options in GPU_SETTINGS.items():
            seconds = {
                epochs: template_run(
                    [*common, *overrides, *options, f"trainer.max_epochs={epochs}"], workdir
                )[0]
                for epochs in (1, 3)
            }
            row[f"{setting} images/s"] = 2 * 16384 / (seconds[3] - seconds[1])
        rows.append(row)
    fast = ["experiment=mnist_cnn_fast", f"data.data_dir={args.data_dir}", "trainer=gpu"]
    seconds, metrics = template_run(
        [*fast, *GPU_SETTINGS["bf16 + channels-last + compile"]], workdir
    )
    case = "experiment=mnist_cnn_fast, fast settings"
    return [*rows, {"case": case, "train s": seconds, "test/acc": metrics["test/acc"]}]


SECTIONS = {
    "training": training,
    "data": data_path,
    "image_folder": image_folder,
    "logging": logging_overhead,
    "accuracy": accuracy,
    "startup": startup,
    "process": process,
    "threads": threads,
    "gpu": gpu,
}


def write(results: dict[str, list[Row]], out: Path) -> None:
    """Each section as a Markdown table (benchmark.md) and CSV rows (benchmark.csv), replacing
    those sections of earlier runs and keeping the others."""
    out.mkdir(parents=True, exist_ok=True)
    sections = _read_sections(out / "benchmark.md")
    rows_csv = [r for r in _read_csv(out / "benchmark.csv") if r[0] not in results]
    for section, rows in results.items():
        names = list(dict.fromkeys(k for row in rows for k in row))
        lines = [f"## {section}", "", "| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
        for row in rows:
            lines.append("| " + " | ".join(_cell(row.get(name, "")) for name in names) + " |")
            rows_csv.append([section, *(f"{name}={row.get(name, '')}" for name in names)])
        sections[section] = "\n".join(lines)
    title = f"# Benchmark ({torch.__version__}, {os.cpu_count()} cores)"
    text = "\n\n".join([title, *sections.values()]) + "\n"
    (out / "benchmark.md").write_text(text)
    with open(out / "benchmark.csv", "w", newline="") as file:
        csv.writer(file).writerows(rows_csv)
    print(text)


def _read_sections(path: Path) -> dict[str, str]:
    """The `## <section>` blocks of an earlier benchmark.md, by name."""
    if not path.is_file():
        return {}
    blocks = path.read_text().split("\n## ")[1:]
    return {block.split("\n", 1)[0]: "## " + block.strip() for block in blocks}


def _read_csv(path: Path) -> list[list[str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as file:
        return list(csv.reader(file))


def _cell(value: str | float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(PROJECT_ROOT.parent / "shared" / "data"))
    parser.add_argument(
        "--sections", nargs="+", choices=SECTIONS, default=[s for s in SECTIONS if s != "gpu"]
    )
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "benchmarks")
    args = parser.parse_args()
    if not (Path(args.data_dir) / "MNIST" / "raw").is_dir():
        parser.error(f"--data-dir {args.data_dir} has no MNIST/raw/: point it at MNIST's parent")
    register_resolvers()
    with tempfile.TemporaryDirectory() as workdir:
        results = {name: SECTIONS[name](args, Path(workdir)) for name in args.sections}
    write(results, args.out)


if __name__ == "__main__":
    main()
