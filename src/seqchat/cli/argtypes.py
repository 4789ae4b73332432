"""Argument types for the command line: a bad value is an argparse error (`seqchat X: error: ...`, exit 2)."""

from __future__ import annotations

import argparse

from seqchat.modeling.devices import DEFAULT_DEVICE, DEFAULT_DTYPE, DTYPES


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is too small: use a whole number of at least 1")
    return value


def port_number(text: str) -> int:
    """A TCP port, 1 to 65535."""
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port: use 1 to 65535")
    return value


def add_device_options(p: argparse.ArgumentParser) -> None:
    """`--device` and `--dtype`, for the commands that load a model."""
    p.add_argument("--device", default=DEFAULT_DEVICE,
                   help=f"where the model runs: cpu, cuda, cuda:N, mps or auto (CUDA when visible); "
                        f"default {DEFAULT_DEVICE}")  # fmt: skip
    p.add_argument("--dtype", default=DEFAULT_DTYPE, choices=list(DTYPES),
                   help=f"the model's floating-point precision (default {DEFAULT_DTYPE})")  # fmt: skip
