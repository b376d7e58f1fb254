"""A mistake on the command line ends in a few lines on stderr naming the key or file and the fix,
exit code 1, no traceback and no result; a bug still shows its traceback."""

import pytest
import torch
from hydra.errors import CompactHydraException
from omegaconf import OmegaConf

from src.engine.config import check_group_choices, group_options
from src.engine.trainer import check_devices
from src.errors import ConfigError
from src.train import train
from tests.conftest import run_script

# (arguments, message, whether it is caught before the first screen)
CASES = {
    "unknown option": (
        ["model=nope"],
        "model=nope: configs/model/ has no such option; choose one of",
        True,
    ),
    "unknown optimizer": (["model/optimizer=nope"], "choose one of adam, adamw, sgd", True),
    "a value for a config": (
        ["model.scheduler=cosine"],
        "model.scheduler='cosine' is invalid: input should be a valid dictionary; to choose "
        "configs/model/scheduler/cosine.yaml, write model/scheduler=cosine",
        True,
    ),
    "a number for a callback": (
        ["callbacks.early_stopping=5"],
        "callbacks.early_stopping=5 is invalid: input should be a valid dictionary",
        True,
    ),
    "typo'd key": (["trainer.max_epocs=3"], "+trainer.max_epocs=3", True),
    "zero batch size": (["data.batch_size=0"], "data.batch_size=0 is invalid", True),
    "negative lr": (["model.optimizer.lr=-0.1"], "model.optimizer.lr=-0.1 is invalid", True),
    "infinite lr": (["model.optimizer.lr=inf"], "model.optimizer.lr=inf is invalid", True),
    "not a number": (["trainer.max_epochs=abc"], "trainer.max_epochs='abc' is invalid", True),
    "zero epochs": (
        ["trainer.max_epochs=0"],
        "trainer.max_epochs=0 is invalid: 0 trains nothing",
        True,
    ),
    "zero steps": (
        ["trainer.max_steps=0"],
        "trainer.max_steps=0 is invalid: 0 trains nothing",
        True,
    ),
    "no logging interval": (
        ["trainer.log_every_n_steps=0"],
        "trainer.log_every_n_steps=0 is invalid",
        True,
    ),
    "negative seed": (
        ["seed=-1"],
        "seed=-1 is invalid: input should be greater than or equal to 0",
        True,
    ),
    "bad splits": (["data.splits=[0.5,0.2,0.2]"], "data.splits must be three positive", True),
    "empty layer": (
        ["model.net.hidden_sizes=[0]"],
        "model.net.hidden_sizes=[0] and model.net.dropout",
        True,
    ),
    "argument of the wrong type": (
        ["model.net.hidden_sizes=abc"],
        "model.net.hidden_sizes='abc' is invalid: 'str' instances are not allowed as a sequence",
        True,
    ),
    "unknown argument": (
        ["+data.foo=1"],
        "data.foo is not an argument of PointsDataModule that a config sets; it takes num_samples",
        True,
    ),
    "argument set from the data": (
        ["+model.net.num_outputs=3"],
        "model.net.num_outputs is given by the template (from the data, or once built); remove it",
        True,
    ),
    "scheduler argument": (
        ["model/scheduler=step", "model.scheduler.step_size=[1]"],
        "model.scheduler.step_size=[1] is invalid: input should be a valid integer",
        True,
    ),
    "image model on points": (["model=cnn"], "model=cnn cannot train on data=points", True),
    "incompatible pair": (
        ["model=logreg", "data.means=[[0,0],[3,3],[-3,-3]]"],
        "points: mlp; data that model=logreg takes: points.",  # and the alternatives
        True,
    ),
    "no validation for the monitor": (
        ["+trainer.limit_val_batches=0"],
        "monitor=val/loss can never be logged: trainer.limit_val_batches=0 runs no validation",
        True,
    ),
    "a plateau schedule without a monitor": (
        ["monitor=null", "model/scheduler=plateau"],
        "model.scheduler.monitor is null, and a ReduceLROnPlateau schedule steps on a monitored",
        True,
    ),
    "a fold without folds": (
        ["data.fold=2"],
        "data.folds=null with data.fold=2: give data.folds=<k> (2 or more) and data.fold from 0",
        True,
    ),
    "a fold past the folds": (
        ["data.folds=3", "data.fold=3"],
        "data.folds=3 with data.fold=3",
        True,
    ),
    "missing checkpoint": (
        ["ckpt_path=nowhere.ckpt"],
        "ckpt_path=nowhere.ckpt: no checkpoint",
        True,
    ),
    "missing data": (
        ["data=mnist", "model=cnn", "data.data_dir=MISSING", "data.download=false"],
        "MNIST is missing or corrupt under data.data_dir=MISSING (data.download=false); put",
        False,
    ),
}
if not torch.cuda.is_available():
    CASES["no GPU"] = (
        ["trainer=gpu"],
        "trainer.accelerator=gpu with trainer.devices=1: this machine has 0 such devices",
        True,
    )
    CASES["no GPUs for DDP"] = (
        ["trainer=ddp"],
        "trainer.accelerator=gpu with trainer.devices=-1: this machine has 0 such devices",
        True,
    )


@pytest.mark.parametrize("devices", [-1, "-1", "auto", 2, "2", "0,1", [0, 1]])
def test_what_trainer_devices_asks_of_two_gpus_is_there(devices, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    check_devices(OmegaConf.create({"accelerator": "gpu", "devices": devices}))
    with pytest.raises(ConfigError, match="this machine has 2 such devices"):
        check_devices(OmegaConf.create({"accelerator": "gpu", "devices": 3}))


# through the real command line: a Hydra error, an early and a late check of ours, one from the
# data and one from the model; the others in-process, to the same exception
COMMAND_LINE = ("unknown option", "typo'd key", "zero batch size", "image model on points")
COMMAND_LINE += ("missing data",)


def arguments(args: list[str], tmp_path) -> list[str]:
    return [arg.replace("MISSING", str(tmp_path / "missing")) for arg in args]


@pytest.mark.parametrize("case", COMMAND_LINE)
def test_a_mistake_ends_in_one_sentence(case: str, tmp_path) -> None:
    args, message, early = CASES[case]
    run_dir = tmp_path / "run"
    result = run_script("train", *arguments(args, tmp_path), f"hydra.run.dir={run_dir}")
    assert result.returncode == 1
    assert message.replace("MISSING", str(tmp_path / "missing")) in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) <= 8, result.stderr
    assert ("Run directory:" in result.stdout) is not early  # checks before the first screen
    assert not (run_dir / "checkpoints").exists()
    assert not (run_dir / "metrics.json").exists()


@pytest.mark.parametrize("mode", [[], ["-m", "seed=0,1"]], ids=["run", "multirun"])
def test_a_log_dir_that_cannot_be_written_ends_in_one_sentence(tmp_path, mode) -> None:
    not_a_folder = tmp_path / "a_file"
    not_a_folder.write_text("")
    result = run_script("train", *mode, f"paths.log_dir={not_a_folder}")
    assert result.returncode == 1
    assert result.stderr.startswith(f"cannot write to {not_a_folder}/train/")
    assert "(Not a directory); give a writable paths.log_dir" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def choices(group: str) -> str:
    return f"choose one of {', '.join(group_options(group))}"


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("model/optimizer=nope", "choose one of adam, adamw, sgd"),  # a nested group
        ("model=1", f"model=1: configs/model/ has no such option; {choices('model')}"),
        ("logger=null", f"logger=null: configs/logger/ has no such option; {choices('logger')}"),
    ],
)
def test_an_unknown_option_names_the_options(argument: str, message: str) -> None:
    with pytest.raises(SystemExit, match=message):  # (Hydra's own error has a traceback)
        check_group_choices(["src/train.py", argument])


IN_PROCESS = [case for case in CASES if case not in (*COMMAND_LINE, "unknown optimizer")]


@pytest.mark.parametrize("case", IN_PROCESS)
def test_a_mistake_is_a_foreseen_error_before_the_first_screen(
    make_cfg, case: str, tmp_path, capsys
) -> None:
    args, message, _ = CASES[case]
    with pytest.raises(CompactHydraException) as error:
        train(make_cfg(*arguments(args, tmp_path)))
    assert message.replace("MISSING", str(tmp_path / "missing")) in str(error.value)
    assert "Run directory:" not in capsys.readouterr().out
    assert not (tmp_path / "checkpoints").exists()


def test_a_bug_keeps_its_traceback(tmp_path) -> None:
    bug = "+callbacks.bug={_target_: tests.crashes.Bug}"
    result = run_script("train", bug, f"hydra.run.dir={tmp_path}", timeout=120)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "RuntimeError: an unforeseen error" in result.stderr


@pytest.mark.parametrize(
    ("script", "args", "key"),
    [("eval", [], "ckpt_path"), ("export", [], "ckpt_path"), ("predict", ["ckpt_path=x"], "input")],
)
def test_a_value_left_to_the_command_line_is_asked_for(script, args, key, tmp_path) -> None:
    result = run_script(script, *args, f"hydra.run.dir={tmp_path}", timeout=120)
    assert result.returncode == 1
    message = f"{key} is not given; add {key}=... to the command line"
    assert message in result.stderr.splitlines(), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("setting", "reason"),
    [
        ("trainer.devices=0", r"`Trainer\(devices=0\)` value is not a valid input"),
        ("trainer.precision=17", "Precision 17 is invalid"),
    ],
)
def test_trainer_settings_lightning_refuses_end_in_one_sentence(make_cfg, setting, reason) -> None:
    with pytest.raises(ConfigError, match=f"^the trainer settings do not work: {reason}"):
        train(make_cfg(setting))
