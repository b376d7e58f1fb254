"""Networks: plain `nn.Module`s, one per file, each built from a `DataSpec`."""
