"""Files are data, never code: a `_target_` planted in a checkpoint's record, a run's saved
config or its saved overrides is refused by every entry point before anything runs, unless it
names a class the configuration trusts."""

import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from src.engine.arguments import expand_run_arguments
from src.errors import ConfigError
from src.eval import evaluate
from src.export import export
from src.predict import predict
from src.train import train
from tests.conftest import interrupted_run, run_script


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """The file a payload would create: it must never appear."""
    return tmp_path / "pwned"


@pytest.fixture
def payloads(tmp_path: Path, marker: Path) -> dict[str, dict]:
    """Configs that write `marker` when Hydra instantiates them."""
    hub = tmp_path / "hub"
    hub.mkdir()
    (hub / "hubconf.py").write_text(f"open({str(marker)!r}, 'w')\ndef model(): pass\n")
    source = tmp_path / "source.txt"
    source.write_text("anything")
    return {
        "write_text": {"_target_": "pathlib.Path.write_text", "self": str(marker), "data": "x"},
        "open": {"_target_": "builtins.open", "file": str(marker), "mode": "w"},
        "copyfile": {"_target_": "shutil.copyfile", "src": str(source), "dst": str(marker)},
        # a function of a trusted module that writes files, but returns no network
        "provenance": {
            "_target_": "src.engine.provenance.write_provenance",
            "run_dir": str(marker),
            "resumed": False,
        },
        "hub": {
            "_target_": "torch.hub.load",
            "repo_or_dir": str(hub),
            "model": "model",
            "source": "local",
        },
    }


PLACES = {  # where in the record's model config the payload goes
    "nested in net": lambda model, payload: model["net"].update(dropout=payload),
    "as the net": lambda model, payload: model.update(net=payload),
    "as the optimizer": lambda model, payload: model.update(optimizer=payload),
    "nested in the scheduler": lambda model, payload: model.update(
        scheduler={"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": payload}
    ),
    "as the module": lambda model, payload: model.update(module=payload["_target_"]),
}


def entry_points(make_cfg, ckpt: Path, tmp_path: Path) -> dict[str, Callable[[], Any]]:
    """Each entry point that reads `ckpt`, ready to run in-process."""
    points = tmp_path / "points.csv"
    points.write_text("1.0,2.0\n")
    return {
        "eval": lambda: evaluate(make_cfg(f"ckpt_path={ckpt}", config_name="eval")),
        "predict": lambda: predict(
            make_cfg(f"ckpt_path={ckpt}", f"input={points}", config_name="predict")
        ),
        "export": lambda: export(make_cfg(f"ckpt_path={ckpt}", config_name="export")),
        "train ckpt_path=": lambda: train(make_cfg(f"ckpt_path={ckpt}")),
    }


def planted_checkpoint(run: Path, tmp_path: Path, place: str, payload: dict) -> Path:
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    PLACES[place](checkpoint["built_from"]["model"], payload)
    path = tmp_path / "planted.ckpt"
    torch.save(checkpoint, path)
    return path


CASES = [("nested in net", payload) for payload in ("write_text", "open", "copyfile", "hub")]
CASES += [(place, "open") for place in PLACES if place != "nested in net"]
CASES += [("as the net", "provenance")]


@pytest.mark.parametrize(("place", "payload"), CASES)
def test_a_checkpoint_naming_code_is_refused_by_every_entry_point(
    make_cfg, default_run, tmp_path, marker, payloads, place, payload
) -> None:
    ckpt = planted_checkpoint(default_run, tmp_path, place, payloads[payload])
    for name, run in entry_points(make_cfg, ckpt, tmp_path).items():
        with pytest.raises(ConfigError, match=rf"^checkpoint {ckpt}: built_from\.model\.") as error:
            run()
        assert "_target_" in str(error.value) or "builtins.open" in str(error.value), name
        assert not marker.exists(), name


def test_the_command_line_refuses_a_planted_checkpoint_in_one_sentence(
    default_run, tmp_path, marker, payloads
) -> None:
    ckpt = planted_checkpoint(default_run, tmp_path, "nested in net", payloads["open"])
    result = run_script("eval", f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'eval'}")
    assert result.returncode == 1
    assert (
        f"checkpoint {ckpt}: built_from.model.net.dropout._target_ would build an object inside "
        f"built_from.model.net; the arguments of a network are plain values"
    ) in result.stderr
    assert not marker.exists()


def copied_run(default_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(default_run, run, ignore=shutil.ignore_patterns("run.lock"))
    return run


@pytest.mark.parametrize("nested", [False, True])
@pytest.mark.parametrize("payload", ["write_text", "open", "copyfile", "hub"])
def test_a_checkpoints_data_config_naming_code_is_refused(
    make_cfg, default_run, tmp_path, marker, payloads, payload, nested
) -> None:
    checkpoint = torch.load(default_run / "checkpoints" / "last.ckpt", weights_only=True)
    if nested:
        checkpoint["built_from"]["data"]["std"] = payloads[payload]
    else:
        checkpoint["built_from"]["data"] = payloads[payload]
    ckpt = tmp_path / "planted.ckpt"
    torch.save(checkpoint, ckpt)
    runs = entry_points(make_cfg, ckpt, tmp_path)
    del runs["export"]  # exports the network alone: no data
    for name, run in runs.items():
        refused = rf"^checkpoint {ckpt}: built_from\.data"
        with pytest.raises(ConfigError, match=refused):
            run()
        assert not marker.exists(), name


def test_a_runs_saved_config_is_never_built(make_cfg, default_run, tmp_path, marker, payloads):
    run = copied_run(default_run, tmp_path)
    config_file = run / ".hydra" / "config.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["data"] = payloads["open"]
    config_file.write_text(yaml.safe_dump(config))
    metrics = evaluate(make_cfg(f"ckpt_path={run}", config_name="eval"))
    assert metrics["test/acc"] > 0.9  # the checkpoint's own data config
    assert not marker.exists()


@pytest.mark.parametrize(
    "override",
    [
        "+callbacks.x={_target_: builtins.open, file: MARKER, mode: w}",
        "+callbacks.x._target_=builtins.print",
        "trainer.plugins=[{_target_: builtins.open, file: MARKER, mode: w}]",
        "hydra.searchpath=[file:///tmp]",
        "callbacks=../../../../tmp/evil",
        "model=../data/points",
    ],
)
def test_saved_overrides_naming_code_are_refused_by_resume(
    default_run, tmp_path, marker, override
) -> None:
    run = copied_run(default_run, tmp_path)
    overrides_file = run / ".hydra" / "overrides.yaml"
    saved = yaml.safe_load(overrides_file.read_text())
    line = override.replace("MARKER", str(marker))
    overrides_file.write_text(yaml.safe_dump([*saved, line]))
    with pytest.raises(ConfigError, match=rf"^{overrides_file}: the saved override "):
        expand_run_arguments(["src/train.py", f"resume={run}"])
    result = run_script("train", f"resume={run}")
    assert result.returncode == 1
    assert f"{overrides_file}: the saved override {line!r}" in result.stderr
    assert not marker.exists()
    assert not (run / "error.txt").exists()


def test_only_what_the_configuration_trusts_is_built_and_it_resumes(tmp_path) -> None:
    """A class from an untrusted module is refused from the command line, in a checkpoint and in
    a run's saved overrides, naming the setting; trusting its package on the command line makes
    it train, resume and evaluate."""
    tiny = "model.net._target_=tests.outside.Tiny"
    trust = "trusted=[src,torch.optim,torchvision.models,tests]"
    setting = "add tests to trusted (configs/trusted.yaml, or trusted=[...] on the command line)"
    refused = run_script("train", tiny, f"hydra.run.dir={tmp_path / 'refused'}")
    assert refused.returncode == 1
    assert "model.net._target_=tests.outside.Tiny is not in a module the configuration" in (
        refused.stderr
    )
    assert setting.replace("tests to", "tests.outside to") in refused.stderr
    run = tmp_path / "run"
    last = "callbacks.last_checkpoint.every_n_train_steps=5"
    stopped = interrupted_run(run, signal.SIGTERM, tiny, trust, last)
    assert stopped.returncode == 1, stopped.stderr[-3000:]
    assert f"resume with: python src/train.py resume={run} '{trust}'" in stopped.stderr
    plain = run_script("train", f"resume={run}")
    assert plain.returncode == 1
    assert "names tests.outside.Tiny, from a module the configuration does not trust" in (
        plain.stderr
    )
    resumed = run_script("train", f"resume={run}", trust)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    evaluated = run_script("eval", f"ckpt_path={run}", f"hydra.run.dir={tmp_path / 'eval'}")
    assert evaluated.returncode == 1
    assert f"checkpoint {run / 'checkpoints' / 'last.ckpt'}: built_from.model.net._target_=" in (
        evaluated.stderr
    )
    trusted = run_script("eval", f"ckpt_path={run}", trust, f"hydra.run.dir={tmp_path / 'eval2'}")
    assert trusted.returncode == 0, trusted.stderr[-3000:]
