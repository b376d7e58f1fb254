"""The speed options users pick from the command line: compile, channels_last, bf16."""

import pytest
import torch

from src.train import train

QUIET = ["extras.print_config=false", "callbacks.rich_progress_bar=null", "logger=none"]


@pytest.mark.slow  # compiling takes half a minute on a CPU
def test_compiled_channels_last_cnn_trains_and_saves_plain_checkpoints(make_cfg, tmp_path) -> None:
    options = ["model.compile=true", "model.channels_last=true", "trainer.max_epochs=1"]
    train(make_cfg("data=fake_images", "model=cnn", "data.num_samples=256", *options, *QUIET))
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert not any("_orig_mod" in name for name in state)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("model", ["cnn", "vgg", "resnet18"])
def test_bf16_channels_last_compiled_training_on_a_gpu(make_cfg, model: str) -> None:
    options = ["trainer=gpu", "trainer.precision=bf16-mixed", "model.channels_last=true"]
    options += ["model.compile=true", "trainer.max_epochs=1"]
    metrics = train(make_cfg("data=fake_images", f"model={model}", *options, *QUIET))
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))
