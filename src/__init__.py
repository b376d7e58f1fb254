"""Lightning + Hydra template: datamodules and networks composed by configs."""
