"""A Hydra sweeper on Optuna's ask/tell API: `python src/train.py -m hydra/sweeper=optuna_asktell`
(`hparams_search=` configs set it)."""
