"""Helpers for the entry points: config checks, console output, provenance, checkpoints."""
