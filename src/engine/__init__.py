"""The engine: what runs around your code and keeps runs exact and safe. You need not edit it;
your data, networks, task modules and callbacks (`src/data`, `src/models`, `src/callbacks`)
never import it (import-linter keeps it so), and it asks of them only what Lightning does plus
the data's `DataSpec` (`src.data.spec`).

By idea:
    config.py, resolvers.py           checks of the composed config, before torch is imported;
                                      what a config group's options are
    arguments.py                      `resume=` and `rerun=` turned into the overrides they mean
    slots.py, building.py, loading.py what a config or checkpoint may build (trust), building a
                                      model for the data, rebuilding one from a checkpoint
    compatibility.py                  which model fits which data, in one sentence
    checkpoint_files.py               reading a checkpoint safely, once per command
    checkpoints.py                    the resume decision (`plan_resume`): which checkpoint, and
                                      what the run may change
    checkpointing.py                  the callbacks and the writer that make checkpoints
    trainer.py                        the Trainer, its devices, callbacks and loggers; stopping
                                      on a signal
    machine.py                        tuning for the machine: threads, NVML, exit
    launch.py                         launchers, DDP ranks, joblib workers, SLURM
    hydra_callbacks.py, provenance.py, sweeps.py
                                      run and sweep directories, what a run was made from, sweep
                                      summaries
    console.py, loggers.py            what a person sees; the loggers' files
    serving.py, inputs.py, predictions.py
                                      what evaluate, predict and export share
    atomic.py                         every file a run writes, written whole
"""
