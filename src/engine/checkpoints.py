"""Finding the checkpoint a run resumes from or evaluates, and loading checkpoints safely."""

import logging
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, ValueType
from omegaconf import DictConfig, OmegaConf

from src.engine.checkpoint_files import CheckpointError, built_from, load_checkpoint
from src.engine.config import CONFIG_DIR
from src.engine.slots import RUNTIME_OPTIONS, TRUST_SETTING, is_trusted, targets
from src.errors import ConfigError

log = logging.getLogger(__name__)

# what a run directory resumes from: the newest of these that loads
RESUMABLE = ("last.ckpt", "on_exception.ckpt")
# saved overrides `resume=` drops: those it sets itself, and the trust a file never extends (the
# resume's own command line may give it again)
RESUME_SETS = (
    *("hydra.run.dir=", "ckpt_path=", "resume=", "rerun=", "logger.wandb.id=", "trusted="),
    "continue_run=",
)
# what `-m resume=<sweep dir>` may add: how its jobs run, not what they are
SWEEP_RUNNERS = ("-m", "--multirun", "trusted=", "hydra/launcher=", "hydra.launcher.")
SWEEP_RUNNERS += ("hydra.sweeper.n_trials=", "hydra.sweeper.n_jobs=")
# the Hydra settings a sweep's record may give its continuation
SWEEP_HYDRA = ("hydra/launcher=", "hydra/sweeper=", "hydra.launcher.", "hydra.sweeper.")
SWEEP_HYDRA += ("hydra.verbose=",)
# the override that gives a run from a saved config this project's Hydra settings
FROM_SAVED_CONFIG = "+hydra=default"
# data settings that say how batches are served, not which: what a resumed run may change
SERVING_KEYS = (
    "loader",
    "num_workers",
    "pin_memory",
    "persistent_workers",
    "on_device",
    "data_dir",
    "root",
    "download",
)


def resolve_checkpoint(ckpt_path: str | None, run_dir: Path) -> str | None:
    """The checkpoint file meant by `ckpt_path`, checked to load safely; None to start afresh.

    `last` means this run directory's newest checkpoint that loads (of `checkpoints/last.ckpt`,
    `checkpoints/on_exception.ckpt` and Lightning's `hpc_ckpt_<n>.ckpt`; point `hydra.run.dir`
    at an earlier run to continue it in place); a run directory means the same there; anything
    else is a checkpoint file. A path that leads to no good file is an error, never a silent
    fresh start.
    """
    if ckpt_path is None:
        return None
    path = run_dir if ckpt_path == "last" else Path(ckpt_path).expanduser()
    if path.is_dir():
        return str(newest_loadable(path, f"ckpt_path={ckpt_path}").resolve())
    if not path.is_file():
        raise ConfigError(
            f"ckpt_path={ckpt_path}: no checkpoint at {path}; give a .ckpt file, a run directory "
            f"with checkpoints/last.ckpt, or ckpt_path=last with hydra.run.dir=<that run directory>"
        )
    check_checkpoint(path)
    return str(path.resolve())


def resumable_checkpoints(run_dir: Path) -> list[Path]:
    """The run's checkpoints to resume from, newest first."""
    paths = [run_dir / "checkpoints" / name for name in RESUMABLE]
    paths += run_dir.glob("hpc_ckpt_*.ckpt")  # Lightning's, on SLURM's requeue signal
    return sorted((p for p in paths if p.is_file()), key=lambda p: p.stat().st_mtime, reverse=True)


def newest_loadable(run_dir: Path, asked: str) -> Path:
    """The newest of the run's `resumable_checkpoints` that loads, saying in one line which it
    skipped and why; `ConfigError` (naming `asked`, the argument) when none does."""
    failures = []
    for path in resumable_checkpoints(run_dir):
        try:
            check_checkpoint(path)
        except ConfigError as error:
            failures.append(f"{path.name}: {error.reason}")
            log.warning(f"Skipped {path}: {error.reason}")
            continue
        return path
    found = f" ({'; '.join(failures)})" if failures else ""
    raise ConfigError(
        f"{asked}: no checkpoint in {run_dir} loads{found}; give a run directory with "
        f"checkpoints/last.ckpt, or a .ckpt file"
    )


def load_step(ckpt_path: str | Path) -> int:
    """The training step a checkpoint was saved at."""
    return load_checkpoint(ckpt_path, mmap=True)["global_step"]


def check_left_to_train(cfg: DictConfig, ckpt_path: str) -> None:
    """Raise `ConfigError` when the checkpoint has done all the training this run allows:
    early stopping ended it (restored, it would stop again after an epoch), it has trained for
    all of `trainer.max_time`, or it has reached `trainer.max_epochs` or `trainer.max_steps`
    (past them, Lightning refuses it with a traceback)."""
    checkpoint = load_checkpoint(ckpt_path, mmap=True)
    stopped_at = [
        state.get("stopped_epoch", 0)
        for name, state in checkpoint.get("callbacks", {}).items()
        if name.startswith("EarlyStopping")
    ]
    if OmegaConf.select(cfg, "callbacks.early_stopping") and any(stopped_at):
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path}: nothing left to train, early stopping ended that run "
            f"at epoch {max(stopped_at)}; add callbacks.early_stopping=null to train on"
        )
    elapsed = checkpoint.get("callbacks", {}).get("Timer", {}).get("time_elapsed", {})
    budget = time_budget(cfg.trainer.get("max_time"))
    if budget is not None and elapsed.get("train", 0) >= budget.total_seconds():
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path}: nothing left to train, the run has trained for "
            f"{timedelta(seconds=round(elapsed['train']))}, all of "
            f"trainer.max_time={cfg.trainer.max_time}; raise it to train on"
        )
    # epochs whose training ended, as Lightning counts them when it restores the checkpoint
    progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {})
    epochs = progress.get("current", {}).get("processed", checkpoint["epoch"])
    steps = checkpoint["global_step"]
    limits = [(cfg.trainer.get("max_epochs"), epochs), (cfg.trainer.get("max_steps"), steps)]
    if any(limit is not None and 0 <= limit <= done for limit, done in limits):  # -1: no limit
        raise nothing_left_to_train(cfg, epochs, steps)


def time_budget(max_time: str | dict | None) -> timedelta | None:
    """`trainer.max_time` as Lightning reads it ("DD:HH:MM:SS", or a dict of days, hours,
    minutes and seconds); None for none, or one Lightning refuses (it says why)."""
    units = ("days", "hours", "minutes", "seconds")
    try:
        if isinstance(max_time, str):
            return timedelta(**dict(zip(units, map(int, max_time.split(":")), strict=True)))
        return timedelta(**max_time) if max_time else None
    except (TypeError, ValueError):
        return None


def nothing_left_to_train(cfg: DictConfig, epochs: int, steps: int) -> ConfigError:
    return ConfigError(
        f"ckpt_path={cfg.ckpt_path}: nothing left to train, the checkpoint has done {epochs} "
        f"epochs ({steps} steps), as many as trainer.max_epochs={cfg.trainer.max_epochs} and "
        f"trainer.max_steps={cfg.trainer.max_steps} allow; raise them to train on"
    )


def check_checkpoint(path: Path) -> None:
    """Raise `ConfigError` unless `path` loads safely and its weights are all finite."""
    import torch

    checkpoint = load_checkpoint(path, mmap=True)  # mapped, not copied: seconds for big models
    weights = checkpoint.get("state_dict", {})
    if any(t.is_floating_point() and not torch.isfinite(t).all() for t in weights.values()):
        raise CheckpointError(path, "its weights hold NaN or infinite values")


def check_resume_settings(cfg: DictConfig, ckpt_path: str) -> None:
    """Raise `ConfigError` when this run's model or data settings differ from those the
    checkpoint was trained with: resuming restores its optimizer and scheduler states, the
    loader's position and the random states over them (or cannot load its weights into another
    network), so the new values would be ignored or break the run; `seed` is compared with the
    data's (its random states come from the checkpoint). The model's runtime options, how batches
    are served (`SERVING_KEYS`) and the trainer's settings may change."""
    record = built_from(load_checkpoint(ckpt_path, mmap=True), f"checkpoint {ckpt_path}")
    model = OmegaConf.to_container(cfg.model, resolve=True)
    pairs = {
        f"model.{key}": (model.get(key), record["model"].get(key))
        for key in sorted(model.keys() | record["model"].keys())
        if key not in RUNTIME_OPTIONS
    }
    if saved_data := record.get("data"):
        data = OmegaConf.to_container(cfg.data, resolve=True), saved_data
        pairs["data"] = tuple({k: v for k, v in d.items() if k not in SERVING_KEYS} for d in data)
        pairs["seed"] = cfg.get("seed"), saved_data.get("seed", cfg.get("seed"))
    for key, (value, old) in pairs.items():
        if difference := _first_difference(key, _plain(value), _plain(old)):
            name, value, old = difference
            raise ConfigError(
                f"{name}={value} differs from {old}, the value checkpoint {ckpt_path} was "
                f"trained with, which resuming would restore or fail on; drop it to continue the "
                f"run as it was, or start a new run without ckpt_path"
            )


def continue_logs(cfg: DictConfig, ckpt_path: str) -> None:
    """When the run resumes in its own directory, have its loggers continue the history there:
    each logger config with a `purge_step` gets the checkpoint's step, so what the interrupted
    run logged after its checkpoint is dropped (CSV) or hidden (TensorBoard), and W&B continues
    the run's own W&B run (its newest in `wandb/`) unless `logger.wandb.id` is given."""
    run_dir = Path(cfg.paths.output_dir).resolve()
    if not Path(ckpt_path).is_relative_to(run_dir):
        return
    step = load_step(ckpt_path)
    for logger in (cfg.get("logger") or {}).values():
        if logger and "purge_step" in logger:
            logger.purge_step = step
    wandb_runs = sorted(run_dir.glob("wandb/*run-*"), key=lambda p: p.stat().st_mtime)
    if OmegaConf.select(cfg, "logger.wandb") and cfg.logger.wandb.get("id") is None and wandb_runs:
        cfg.logger.wandb.id = wandb_runs[-1].name.rpartition("-")[2]  # <kind>-run-<time>-<id>


def _first_difference(key: str, value: Any, old: Any) -> tuple[str, Any, Any] | None:
    """The first dotted key under `key` where `value` and `old` differ, with both values."""
    if isinstance(value, dict) and isinstance(old, dict):
        for name in sorted(value.keys() | old.keys()):
            found = _first_difference(f"{key}.{name}", value.get(name), old.get(name))
            if found:
                return found
        return None
    return None if value == old else (key, value, old)


def _plain(value: Any) -> Any:
    """`value` with tuples as lists, so saved and configured sequences compare equal."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def expand_run_arguments(argv: list[str]) -> list[str]:
    """A command line with `resume=<run dir>` or `rerun=<run dir>` replaced by what they mean.

    - `resume=`: continue that run where it stopped, in its directory: its saved overrides
      (checked by `check_saved_override`: a file is data), `hydra.run.dir=<run dir>` and
      `ckpt_path=last` (`continue_logs` continues its W&B run). A run that `rerun=` started
      continues from its saved config, as it began. A sweep's directory continues the sweep
      (`continued_sweep`).
    - `rerun=`: run that run's saved config again, in a new run directory with this project's
      Hydra settings (run directories, provenance). It runs the file as a config: only rerun
      runs you trust.

    Either takes only the directory of a run (or sweep) of src/train.py.

    The command line's other arguments follow and win.
    """
    given = [arg for arg in argv[1:] if arg.startswith(("resume=", "rerun="))]
    if not given:
        return argv
    others = [arg for arg in argv[1:] if not arg.startswith(("resume=", "rerun="))]
    kind, path = given[-1].partition("=")[0], path_value(given[-1])
    run_dir = Path(path).expanduser().resolve()
    hydra_dir = run_dir / ".hydra"
    if run_dir.is_file():
        raise ConfigError(
            f"{given[-1]}: {run_dir} is a file; give its run's directory, or start a new run "
            f"from a checkpoint with ckpt_path={path}"
        )
    if kind == "resume" and (run_dir / "multirun.yaml").is_file():
        return continued_sweep(argv[0], run_dir, others)
    config_file, overrides_file = hydra_dir / "config.yaml", hydra_dir / "overrides.yaml"
    for needed in (config_file, overrides_file):
        if not needed.is_file():
            raise ConfigError(
                f"{given[-1]}: {needed} is missing; give the directory of a run this template "
                f"started (logs/train/runs/<run>)"
            )
    config = yaml.safe_load(config_file.read_text())
    task = config.get("task_name") if isinstance(config, dict) else None
    if task != "train":
        raise ConfigError(
            f"{given[-1]}: {run_dir} is not a training run (task_name: {task}); give the "
            f"directory of a run of src/train.py (logs/train/runs/<run>)"
        )
    if kind == "rerun":  # a new run: from the start, as its own W&B run, with its threads
        fresh = ["ckpt_path=null", *recorded_threads(run_dir, config)]
        if "wandb" in (config.get("logger") or {}):
            fresh.append("logger.wandb.id=null")
        return [argv[0], *from_saved_config(hydra_dir), *fresh, *others]
    saved = yaml.safe_load(overrides_file.read_text()) or []
    if not isinstance(saved, list) or not all(isinstance(o, str) for o in saved):
        raise ConfigError(f"{overrides_file} is not a list of overrides; give a run's directory")
    kept = [o for o in saved if not o.startswith(RESUME_SETS)]
    # a run that `rerun=` started continues from its own saved config, as it began
    source = from_saved_config(hydra_dir) if FROM_SAVED_CONFIG in kept else []
    kept = [o for o in kept if o != FROM_SAVED_CONFIG]
    trusted = configured_trust(others)
    for override in kept:
        check_saved_override(override, overrides_file, trusted)
    resume = [f"hydra.run.dir={quoted(str(run_dir))}", "ckpt_path=last"]
    return [argv[0], *source, *kept, *resume, *others]


def continued_sweep(script: str, sweep_dir: Path, others: list[str]) -> list[str]:
    """The command that continues the sweep in `sweep_dir` as a whole: its recorded command
    (`multirun.yaml`: its overrides, sweeps included, and how it was launched, checked by
    `check_saved_override`) in its directory, with `continue_run=true`: each job keeps its
    result, resumes from its checkpoints, or starts. `others` may only say how the jobs run
    (`SWEEP_RUNNERS`)."""
    record = sweep_dir / "multirun.yaml"
    config = yaml.safe_load(record.read_text())  # as written: `${...}` in overrides unresolved
    overrides = (config.get("hydra") or {}).get("overrides") if isinstance(config, dict) else None
    if not isinstance(overrides, dict) or config.get("task_name") != "train":
        raise ConfigError(
            f"resume={sweep_dir}: {record} is not the record of a sweep of src/train.py; give "
            f"the directory of one (logs/train/multiruns/<sweep>)"
        )
    if changes := [o for o in others if not o.startswith(SWEEP_RUNNERS)]:
        raise ConfigError(
            f"resume={sweep_dir}: {changes[0]} would change the jobs of a sweep that continues "
            f"as it began; drop it, or start a new sweep"
        )
    trusted = configured_trust(others)
    task = [o for o in _listed(overrides, "task", record) if not o.startswith(RESUME_SETS)]
    ours = ("hydra.sweep.dir=", "hydra.mode=")
    launch = [o for o in _listed(overrides, "hydra", record) if not o.startswith(ours)]
    for override in task:
        check_saved_override(override, record, trusted)
    for override in launch:
        check_saved_override(override, record, trusted, hydra_keys=SWEEP_HYDRA)
    runners = [o for o in others if o not in ("-m", "--multirun")]
    again = [f"hydra.sweep.dir={quoted(str(sweep_dir))}", "continue_run=true"]
    return [script, "--multirun", *task, *launch, *again, *runners]


def _listed(overrides: dict[str, Any], kind: str, record: Path) -> list[str]:
    """The `kind` overrides (task, hydra) a sweep's record lists; `ConfigError` otherwise."""
    listed = overrides.get(kind) or []
    if not isinstance(listed, list) or not all(isinstance(o, str) for o in listed):
        raise ConfigError(f"{record}: hydra.overrides.{kind} is not a list of overrides")
    return listed


def recorded_threads(run_dir: Path, config: dict[str, Any]) -> list[str]:
    """`threads=<n>`, the count a run whose config says `auto` chose as it began (its
    provenance records it), so that a rerun computes as it did; nothing when unknown."""
    provenance = run_dir / "provenance.yaml"
    if config.get("threads") != "auto" or not provenance.is_file():
        return []
    threads = (yaml.safe_load(provenance.read_text()) or {}).get("threads")
    return [f"threads={threads}"] if isinstance(threads, int) and threads > 0 else []


def from_saved_config(hydra_dir: Path) -> list[str]:
    """Arguments that run the config saved in `hydra_dir` with this project's Hydra settings."""
    config = ["--config-path", str(hydra_dir), "--config-name", "config"]
    return [*config, f"hydra.searchpath=[{quoted(f'file://{CONFIG_DIR}')}]", FROM_SAVED_CONFIG]


def path_value(argument: str) -> str:
    """The path an argument `key=<path>` gives: quoted as Hydra reads it (`resume='/my runs/x'`)
    or, given whole by the shell, as it is (`'resume=/my runs/x'`)."""
    raw = argument.partition("=")[2]
    try:
        value = OverridesParser.create().parse_override(argument).value()
    except Exception:  # not Hydra's grammar: spaces, say
        return raw
    return value if isinstance(value, str) else raw


def quoted(text: str) -> str:
    """`text` as one value on Hydra's command line: in quotes, which keep spaces and the
    characters Hydra's grammar gives meaning to, with a quote (and the backslashes before it,
    or at the end) escaped."""
    escaped = re.sub(r"(\\*)'", lambda found: found.group(1) * 2 + "\\'", text)
    escaped = re.sub(r"(\\+)$", lambda found: found.group(1) * 2, escaped)
    return f"'{escaped}'"


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _flat(values: list[Any]) -> list[Any]:
    return [item for value in values for item in _as_list(value)]


def _is_option(group: Path, value: Any) -> bool:
    """Whether `value` names an option of the config group in `group` (or none: null)."""
    if value is None:
        return True
    return (
        isinstance(value, str) and Path(value).name == value and (group / f"{value}.yaml").is_file()
    )


def configured_trust(arguments: list[str]) -> list[str]:
    """The `trusted` setting of a command with `arguments`: its own `trusted=[...]`, else that of
    `configs/trusted.yaml`."""
    parser = OverridesParser.create()
    for argument in reversed(arguments):
        if argument.startswith("trusted="):
            value = parser.parse_override(argument).value()
            return [str(v) for v in _as_list(value)]
    return yaml.safe_load((CONFIG_DIR / "trusted.yaml").read_text())["trusted"]


def check_saved_override(
    text: str, source: Path, trusted: list[str], hydra_keys: tuple[str, ...] = ()
) -> None:
    """Raise `ConfigError` unless `text`, an override read from `source`, sets plain values (or
    sweeps them) or names classes the configuration `trusted`: no `trusted` setting and no
    `hydra` one but those starting with `hydra_keys` (a file never changes either), no
    `_target_` from another module, and for a config group one of the project's own options in
    `configs/`."""
    try:
        override = OverridesParser.create().parse_override(text)
        values = _values(override)
    except Exception as error:
        raise ConfigError(f"{source}: {text!r} is not an override ({error})") from None
    key = override.key_or_group
    group = CONFIG_DIR / key
    named = [found for value in values for found in targets(value, key)]
    named += [(key, value) for value in values if key.split(".")[-1] == "_target_"]
    untrusted = [str(t) for _, t in named if not (isinstance(t, str) and is_trusted(t, trusted))]
    fix = "a run's saved overrides only set values, so remove it from that file or start a new run"
    hydra = key.split(".")[0].split("/")[0] == "hydra"
    if hydra and not text.startswith(hydra_keys):
        problem = "sets Hydra itself"
    elif key.split(".")[0] == "trusted":
        problem = "sets what the configuration trusts, which a file never does"
        fix = "give trusted=[...] on the command line instead, or remove it from that file"
    elif untrusted:
        module = untrusted[0].rpartition(".")[0] or untrusted[0]
        problem = f"names {untrusted[0]}, from a module the configuration does not trust"
        fix = f"to resume the run, add {module} to {TRUST_SETTING}, or remove it from that file"
    elif not hydra and group.is_dir() and not all(_is_option(group, v) for v in _flat(values)):
        problem = f"names no option of configs/{key}/"
    else:
        return
    raise ConfigError(f"{source}: the saved override {text!r} {problem}; {fix}")


def _values(override: Override) -> list[Any]:
    """The values an override sets: its value, each value of a choice or range sweep, none for
    an interval (numbers)."""
    if not override.is_sweep_override():
        return [override.value()]
    if override.value_type == ValueType.INTERVAL_SWEEP:
        return []
    return list(override.sweep_iterator())
