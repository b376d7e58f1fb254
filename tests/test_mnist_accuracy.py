"""The seed recipes reach their accuracy on the real MNIST (slow: minutes on a CPU)."""

import pytest

from src.engine.config import PROJECT_ROOT
from src.train import train

MNIST_ROOT = PROJECT_ROOT.parent / "shared" / "data"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (MNIST_ROOT / "MNIST" / "raw").is_dir(),
        reason=f"the real MNIST is not at {MNIST_ROOT}/MNIST/raw",
    ),
]


@pytest.mark.parametrize(
    ("experiment", "accuracy"), [("mnist_cnn", 0.985), ("mnist_lstm", 0.97), ("mnist_mlp", 0.97)]
)
def test_seed_recipe_reaches_its_test_accuracy(make_cfg, experiment: str, accuracy: float) -> None:
    overrides = [f"experiment={experiment}", f"data.data_dir={MNIST_ROOT}", "logger=none"]
    metrics = train(make_cfg(*overrides, "extras.print_config=false"))
    assert metrics["test/acc"] >= accuracy
