"""Export: ONNX Runtime and TorchScript match PyTorch on real inputs; the CLI writes the file."""

import re
from pathlib import Path

import onnxruntime
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

import src.export
from src.engine.building import build_model
from src.engine.loading import load_module
from src.errors import ConfigError
from src.export import TOLERANCE, export, export_network, exported_outputs
from tests.conftest import TRUSTED, run_script, trained_run

NETWORKS = {"cnn": "mnist", "vgg": "cifar", "resnet18": "cifar", "mlp": "points", "rnn": "sine"}
SLOW_ONNX = ("vgg", "resnet18", "rnn")  # 6-16 s each through the dynamo exporter


@pytest.fixture(scope="module")
def points_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_run(tmp_path_factory.mktemp("export_run") / "run")


@pytest.mark.parametrize(
    ("model", "data", "fmt"),
    [
        pytest.param(
            model,
            data,
            fmt,
            id=f"{model}-{fmt}",
            marks=pytest.mark.slow if fmt == "onnx" and model in SLOW_ONNX else (),
        )
        for model, data in NETWORKS.items()
        for fmt in ("onnx", "torchscript")
    ],
)
def test_exported_network_matches_pytorch_on_real_inputs(
    make_cfg, request, tmp_path: Path, model: str, data: str, fmt: str
) -> None:
    overrides = [f"model={model}", f"data={data}"]
    if data in ("mnist", "cifar"):  # tiny files in the real formats
        overrides += [f"data.data_dir={request.getfixturevalue(f'{data}_dir')}", "data.val_size=20"]
    cfg = make_cfg(*overrides)
    datamodule = instantiate(cfg.data)
    datamodule.setup()
    inputs, _ = next(iter(datamodule.test_dataloader()))  # normalised as in training
    spec = datamodule.spec
    module = build_model(OmegaConf.to_container(cfg.model, resolve=True), spec, cfg.trusted)
    exported = export_network(module.eval().net, fmt, spec.example(2))
    for batch in (inputs, inputs[:1]):  # any batch size
        with torch.inference_mode():
            expected = module(batch)
        assert (exported_outputs(exported, fmt, batch) - expected).abs().max() <= TOLERANCE


def test_export_cli_writes_an_onnx_file_for_onnx_runtime(points_ckpt: Path, tmp_path: Path) -> None:
    result = run_script("export", f"ckpt_path={points_ckpt}", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ONNX Runtime vs PyTorch on 8 random inputs: max abs difference" in result.stdout
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    inputs = torch.tensor([[2.0, 2.0], [-2.0, -2.0], [1.5, 2.5]])
    (outputs,) = session.run(None, {"input": inputs.numpy()})
    with torch.inference_mode():
        expected = load_module(points_ckpt, TRUSTED)[0].eval()(inputs)
    assert torch.from_numpy(outputs) == pytest.approx(expected, abs=TOLERANCE)
    assert outputs.argmax(1).tolist() == [0, 1, 0]


def test_export_writes_torchscript_where_asked(make_cfg, points_ckpt: Path, tmp_path: Path) -> None:
    output = tmp_path / "served" / "points.pt"
    cfg = make_cfg(
        f"ckpt_path={points_ckpt}", "format=torchscript", f"output={output}", config_name="export"
    )
    assert export(cfg) == output
    scripted = torch.jit.load(str(output))
    assert scripted(torch.zeros(5, 2)).shape == (5, 2)


def test_export_refuses_an_unknown_format(make_cfg, points_ckpt: Path) -> None:
    cfg = make_cfg(f"ckpt_path={points_ckpt}", "format=tflite", config_name="export")
    with pytest.raises(ConfigError, match="format=tflite is not an export format; use format=onnx"):
        export(cfg)


def test_an_export_that_differs_from_pytorch_is_not_written(
    make_cfg, points_ckpt: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(
        src.export, "exported_outputs", lambda exported, fmt, inputs: torch.ones(len(inputs), 2) * 9
    )
    cfg = make_cfg(f"ckpt_path={points_ckpt}", "format=torchscript", config_name="export")
    with pytest.raises(RuntimeError, match="differs from PyTorch by up to"):
        export(cfg)
    assert not list(tmp_path.glob("*model*"))


def test_export_never_writes_over_a_file_it_did_not_write(make_cfg, points_ckpt, tmp_path) -> None:
    """Not the checkpoint, ever; another file only when it is an export of the same format (an
    earlier one) or with overwrite=true."""
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    before = points_ckpt.read_bytes()

    def run(output: Path, *args: str) -> Path:
        return export(
            make_cfg(f"ckpt_path={points_ckpt}", f"output={output}", *args, config_name="export")
        )

    for output, args, message in (
        (points_ckpt, ["overwrite=true"], "is the file this command reads"),
        (notes, [], "exists and is not an earlier onnx export"),
    ):
        with pytest.raises(ConfigError, match=f"^output={re.escape(str(output))} {message}"):
            run(output, *args)
    assert points_ckpt.read_bytes() == before and notes.read_text() == "mine\n"
    model = tmp_path / "model.onnx"
    run(model)
    run(model)  # its own earlier export
    run(notes, "overwrite=true")
    assert notes.read_bytes() == model.read_bytes()
