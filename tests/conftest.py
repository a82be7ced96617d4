"""Shared test set-up: computation tests run on the CPU with one thread, like the FA page."""

import os

import torch

os.environ.setdefault("AEVB_DEVICE", "cpu")
torch.set_num_threads(1)
