"""The run layer: what the entry points do around the core (config checks, resume, launch,
provenance, sweeps, the trainer, the console). The core (`data`, `models`, `callbacks`) never
imports it."""
