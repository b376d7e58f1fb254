"""Datamodules: one file per data set, all exposing a `DataSpec`."""
