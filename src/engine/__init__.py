"""The engine: what runs around your code and keeps runs exact and safe. You need not edit it;
your data, networks, task modules and callbacks (`src/data`, `src/models`, `src/callbacks`)
never import it (import-linter keeps it so), and it asks of them only what Lightning does plus
the data's `DataSpec` (`src.data.spec`).

By idea:
    config.py, resolvers.py           checks of the composed config, before torch is imported
    slots.py, building.py, loading.py what a config or checkpoint may build (trust), building a
                                      model for the data, rebuilding one from a checkpoint
    compatibility.py                  which model fits which data, in one sentence
    checkpoint_files.py, checkpoints.py, checkpointing.py
                                      reading a checkpoint safely; choosing one and the resume
                                      policy; the callbacks and writer that make them
    trainer.py, launch.py             the Trainer, devices and threads; launchers, DDP ranks
    hydra_callbacks.py, provenance.py, sweeps.py
                                      run and sweep directories, what a run was made from, sweep
                                      summaries
    console.py, loggers.py            what a person sees; the loggers' files
    serving.py, inputs.py, predictions.py
                                      what evaluate, predict and export share
    atomic.py                         every file a run writes, written whole
"""
