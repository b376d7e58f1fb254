"""Bad input fails early, with a non-zero exit code and one sentence naming the key and fix."""

import pytest

from tests.conftest import run_script

CASES = {
    "unknown option": (["model=nope"], "Available options in 'model'"),
    "unknown optimizer": (["model/optimizer=nope"], "Available options in 'model/optimizer'"),
    "typo'd key": (["trainer.max_epocs=3"], "+trainer.max_epocs=3"),
    "zero batch size": (["data.batch_size=0"], "data.batch_size=0 is invalid"),
    "negative lr": (["model.optimizer.lr=-0.1"], "model.optimizer.lr=-0.1 is invalid"),
    "not a number": (["trainer.max_epochs=abc"], "trainer.max_epochs='abc' is invalid"),
    "bad splits": (["data.splits=[0.8,0.1,0.2]"], "data.splits must be three positive"),
    "missing checkpoint": (["ckpt_path=nowhere.ckpt"], "ckpt_path=nowhere.ckpt: no checkpoint"),
    "negative seed": (
        ["seed=-1"],
        "seed=-1 is invalid: input should be greater than or equal to 0",
    ),
    "no logging interval": (
        ["trainer.log_every_n_steps=0"],
        "trainer.log_every_n_steps=0 is invalid",
    ),
    "zero epochs": (["trainer.max_epochs=0"], "trainer.max_epochs=0 is invalid: 0 trains nothing"),
    "zero steps": (["trainer.max_steps=0"], "trainer.max_steps=0 is invalid: 0 trains nothing"),
    "infinite lr": (["model.optimizer.lr=inf"], "model.optimizer.lr=inf is invalid"),
    "empty layer": (
        ["model.net.hidden_sizes=[0]"],
        "model.net.hidden_sizes=[0] and model.net.dropout",
    ),
    "incompatible pair": (
        ["model=logreg", "data.means=[[0,0],[3,3],[-3,-3]]"],
        "points: mlp; data that model=logreg takes: points.",  # and the alternatives
    ),
}


@pytest.mark.parametrize(("args", "message"), CASES.values(), ids=CASES.keys())
def test_bad_input_fails_with_a_clear_message(args: list[str], message: str, tmp_path) -> None:
    result = run_script("train", *args, f"hydra.run.dir={tmp_path}", timeout=120)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout
    assert not (tmp_path / "checkpoints").exists()


def test_eval_requires_a_checkpoint(tmp_path) -> None:
    result = run_script("eval", f"hydra.run.dir={tmp_path}", timeout=120)
    assert result.returncode != 0
    assert "Missing mandatory value: ckpt_path" in result.stderr
