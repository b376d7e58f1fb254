"""Task modules (how to train, one file per task) and networks (`nets/`, one file each)."""
