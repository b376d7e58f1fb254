"""Export a checkpoint's network for serving, as ONNX or TorchScript, checked against PyTorch.

The exported network (the module's `net`; a module without one is exported whole) takes `input`,
a batch of any size of inputs in the data's dtype, normalised as in training (what
`src/predict.py` feeds the model), and returns `output`, its raw outputs: class logits for
classifiers, values for regressors. ONNX files come from the dynamo-based `torch.onnx.export`
(self-contained, dynamic batch axis) and run in ONNX Runtime; TorchScript from `torch.jit.script`.

python src/export.py ckpt_path=logs/train/runs/<run> format=onnx
python src/export.py ckpt_path=<run>/checkpoints/last.ckpt format=torchscript output=model.pt
"""

import io
import logging
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from omegaconf import DictConfig

from src.engine.atomic import atomic_write
from src.engine.checkpoints import resolve_checkpoint
from src.engine.config import check_given, check_group_choices
from src.engine.machine import skip_collection_at_exit
from src.engine.resolvers import register_resolvers
from src.engine.serving import check_output
from src.errors import ConfigError

if TYPE_CHECKING:
    import lightning as L
    from torch import Tensor, nn

    from src.data.spec import DataSpec

register_resolvers()

SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}
RUNTIMES = {"onnx": "ONNX Runtime", "torchscript": "TorchScript"}
# the most an exported network's outputs may differ from PyTorch's, for outputs up to 1 in size
# (scaled up for larger ones: float32 rounding grows with the values)
TOLERANCE = 1e-4
CHECK_BATCH_SIZE = 8


def export(cfg: DictConfig) -> Path:
    """Write the checkpoint's network in `cfg.format` to `cfg.output`, once its outputs on a
    random batch match PyTorch's; return the file's path."""
    check_given(cfg)
    if cfg.format not in SUFFIXES:
        raise ConfigError(
            f"format={cfg.format} is not an export format; use format=onnx or format=torchscript"
        )
    default = Path(cfg.paths.output_dir) / f"model{SUFFIXES[cfg.format]}"
    output = Path(cfg.output).expanduser() if cfg.output else default
    ckpt_path = resolve_checkpoint(cfg.ckpt_path, Path(cfg.paths.output_dir))
    what = f"an earlier {cfg.format} export"
    check_output(output, [Path(ckpt_path)], EXPORTED[cfg.format], what, cfg.overwrite)
    # Heavy imports come after the config checks, so a bad value fails in about a second.
    import torch

    from src.engine.loading import load_module

    module, spec = load_module(ckpt_path, cfg.trusted)
    net = exported_network(cfg, module).eval()
    generator = torch.Generator().manual_seed(0)
    shape = (CHECK_BATCH_SIZE, *spec.input_shape)
    if spec.torch_dtype.is_floating_point:
        inputs = torch.randn(shape, generator=generator).to(spec.torch_dtype)
    else:  # ids 0 and 1, which every vocabulary has
        inputs = torch.randint(2, shape, generator=generator, dtype=spec.torch_dtype)
    with torch.inference_mode():
        expected = net(inputs)
    exported = export_network(net, cfg.format, spec.example(2))
    difference = (exported_outputs(exported, cfg.format, inputs) - expected).abs().max()
    allowed = TOLERANCE * max(1.0, float(expected.abs().max()))
    if difference > allowed:
        raise RuntimeError(
            f"the {cfg.format} export of {ckpt_path} differs from PyTorch by up to "
            f"{difference:.3g} (more than {allowed:.3g}); try the other format=..."
        )
    with atomic_write(output) as file:
        file.write(exported)
    print_export_summary(cfg.format, output, spec, expected, float(difference))
    return output


def is_onnx(path: Path) -> bool:
    """Whether `path` holds an ONNX model taking `input`, as this script exports them."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # protobuf's and onnx's errors: not a model
        return False
    return [i.name for i in model.graph.input] == ["input"]


def is_torchscript(path: Path) -> bool:
    """Whether `path` holds a TorchScript model (a zip archive with its constants)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


# what each format's earlier exports look like, which a new export may replace
EXPORTED = {"onnx": is_onnx, "torchscript": is_torchscript}


def exported_network(cfg: DictConfig, module: "L.LightningModule") -> "nn.Module":
    """The module's network (`net`), or the module itself when it has none; `ConfigError` when
    that has no `forward` of its own."""
    import lightning as L
    from torch import nn

    if isinstance(net := getattr(module, "net", None), nn.Module):
        return net
    if type(module).forward is L.LightningModule.forward:
        name = type(module).__name__
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path} holds a {name} with no network (net) and no forward; "
            f"export needs one: give {name} a net attribute or a forward"
        )
    return module


def export_network(net: "nn.Module", fmt: str, example: "Tensor") -> bytes:
    """`net` (in eval mode) as an ONNX or TorchScript file's bytes, taking batches of any size of
    inputs like `example` (a batch of 2)."""
    import torch

    if fmt == "torchscript":
        buffer = io.BytesIO()
        torch.jit.save(torch.jit.script(net), buffer)
        return buffer.getvalue()
    for name in ("onnxscript", "onnx_ir"):  # their INFO logs narrate every graph pass
        logging.getLogger(name).setLevel(logging.WARNING)
    # `example` holds 2 samples: torch.export specialises batch sizes 0 and 1
    program = torch.onnx.export(
        net,
        (example,),
        input_names=["input"],
        output_names=["output"],
        dynamo=True,
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        verbose=False,
    )
    return program.model_proto.SerializeToString()


def exported_outputs(exported: bytes, fmt: str, inputs: "Tensor") -> "Tensor":
    """The outputs of the exported network on `inputs`, run by ONNX Runtime (onnx) or
    TorchScript."""
    import torch

    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(exported, providers=["CPUExecutionProvider"])
        return torch.from_numpy(session.run(["output"], {"input": inputs.cpu().numpy()})[0])
    with torch.inference_mode():
        return torch.jit.load(io.BytesIO(exported), map_location="cpu")(inputs.cpu())


def print_export_summary(
    fmt: str, output: Path, spec: "DataSpec", outputs: "Tensor", difference: float
) -> None:
    """Where the file is, what goes in and comes out, and how closely it matches PyTorch."""
    from src.engine.console import console

    def batch_of(shape: tuple[int, ...]) -> str:
        return f"(batch, {', '.join(map(str, shape))})"

    what = "normalised as in training" if spec.kind == "image" else "as in training"
    out = console()
    out.print(f"Exported ({fmt}): {output}")
    out.print(
        f"input: {spec.dtype} {batch_of(spec.input_shape)} {spec.kind}, {what}; "
        f"output: {batch_of(tuple(outputs.shape[1:]))}"
    )
    out.print(
        f"{RUNTIMES[fmt]} vs PyTorch on {len(outputs)} random inputs: "
        f"max abs difference {difference:.3g}"
    )


@hydra.main(version_base="1.3", config_path="../configs", config_name="export")
def main(cfg: DictConfig) -> None:
    export(cfg)


if __name__ == "__main__":
    skip_collection_at_exit()
    check_group_choices(sys.argv)
    main()
