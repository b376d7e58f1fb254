"""A mistake on the command line ends in a few lines on stderr naming the key or file and the fix,
exit code 1, no traceback and no result; a bug still shows its traceback."""

import pytest
import torch

from tests.conftest import run_script

# (arguments, message, whether it is caught before the first screen)
CASES = {
    "unknown option": (
        ["model=nope"],
        "model=nope: configs/model/ has no such option; choose one of cnn,",
        True,
    ),
    "unknown optimizer": (["model/optimizer=nope"], "choose one of adam, adamw, sgd", True),
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
    "image model on points": (["model=cnn"], "model=cnn cannot train on data=points", True),
    "incompatible pair": (
        ["model=logreg", "data.means=[[0,0],[3,3],[-3,-3]]"],
        "points: mlp; data that model=logreg takes: points.",  # and the alternatives
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


@pytest.mark.parametrize(("args", "message", "early"), CASES.values(), ids=CASES.keys())
def test_a_mistake_ends_in_one_sentence(
    args: list[str], message: str, early: bool, tmp_path
) -> None:
    missing = str(tmp_path / "missing")
    args = [arg.replace("MISSING", missing) for arg in args]
    result = run_script("train", *args, f"hydra.run.dir={tmp_path / 'run'}", timeout=120)
    assert result.returncode == 1
    assert message.replace("MISSING", missing) in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) <= 8, result.stderr
    assert ("Run directory:" in result.stdout) is not early  # checks before the first screen
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_bug_keeps_its_traceback(tmp_path) -> None:
    bug = "+callbacks.bug={_target_: tests.crashes.Bug}"
    result = run_script("train", bug, f"hydra.run.dir={tmp_path}", timeout=120)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "RuntimeError: an unforeseen error" in result.stderr


def test_eval_requires_a_checkpoint(tmp_path) -> None:
    result = run_script("eval", f"hydra.run.dir={tmp_path}", timeout=120)
    assert result.returncode != 0
    assert "Missing mandatory value: ckpt_path" in result.stderr
