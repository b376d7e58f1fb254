"""What a person reads: a short first screen, nothing cut when piped, debug output that is the
project's own, and the final metrics and best checkpoint last."""

from pathlib import Path

from tests.conftest import run_script

QUICK = ["trainer.max_epochs=1", "extras.print_config=summary"]


def test_piped_output_is_never_cut_and_starts_with_what_runs(tmp_path: Path) -> None:
    run_dir = tmp_path / ("a_run_directory_whose_path_is_far_longer_than_eighty_columns_" * 2)
    long = "model.optimizer.weight_decay=0.000123456789"
    env = {"COLUMNS": ""}  # unset: rich's 80 columns, unless the run widens them
    # a fresh interpreter, as a person starts it: imports in the order the entry point makes them
    result = run_script("train", *QUICK, long, f"hydra.run.dir={run_dir}", env=env, fresh=True)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert "Train: data=points, model=mlp, trainer=default, logger=csv" in lines
    assert f"Overrides: trainer.max_epochs=1 extras.print_config=summary {long}" in lines
    assert f"Run directory: {run_dir} (whole config: config_tree.log; " in result.stdout
    assert f"Best checkpoint: {run_dir}/checkpoints/epoch_000.ckpt" == lines[-1]
    assert "…" not in result.stdout  # Lightning's model summary and progress bar included
    assert "train/loss_step: " in next(line for line in lines if line.startswith("Epoch 0/0"))
    assert "Skipping setting a default `ModelSummary`" not in result.stdout + result.stderr
    assert "CONFIG" not in result.stdout  # the whole tree is saved, not printed
    assert "src.models.nets.mlp.MLP" in (run_dir / "config_tree.log").read_text()


def test_debug_presets_log_the_project_and_lightning_only(tmp_path: Path) -> None:
    result = run_script("train", "debug=fdr", f"hydra.run.dir={tmp_path}", fresh=True)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    debug = [line for line in output.splitlines() if "][DEBUG]" in line]
    assert debug and all("][lightning." in line or "][src." in line for line in debug)
    assert "matplotlib" not in output
    assert len(output.splitlines()) < 250


def test_the_final_table_and_best_checkpoint_come_last_with_wandb(tmp_path: Path) -> None:
    args = [*QUICK, "logger=many", f"hydra.run.dir={tmp_path}"]
    # stdout and stderr in the order a terminal shows them
    result = run_script("train", *args, merge_stderr=True)
    assert result.returncode == 0, result.stdout[-3000:]
    lines = result.stdout.splitlines()
    assert lines[-1] == f"Best checkpoint: {tmp_path}/checkpoints/epoch_000.ckpt"
    table = max(i for i, line in enumerate(lines) if "Final metrics" in line)
    assert max(i for i, line in enumerate(lines) if line.startswith("wandb:")) < table
