"""The command line a run's directory stands for: `resume=<run dir>` and `rerun=<run dir>`
rewritten into the overrides they mean (and `-m resume=<sweep dir>` into its sweep's), each saved
override checked as the data it is."""

import re
from pathlib import Path
from typing import Any

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, ValueType

from src.engine.config import CONFIG_DIR, is_config_group, is_option
from src.engine.slots import TRUST_SETTING, is_trusted, targets
from src.errors import ConfigError

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
    elif not hydra and is_config_group(key) and not all(is_option(key, v) for v in _flat(values)):
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
