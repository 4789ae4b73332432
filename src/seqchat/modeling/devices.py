"""Where and in what precision a model runs: `--device` and `--dtype` names to torch objects (light: torch only)."""

from __future__ import annotations

import torch

from seqchat.errors import SeqChatInputError

DEFAULT_DEVICE = "cpu"
DEFAULT_DTYPE = "float32"
# the precisions a model can be loaded in (`--dtype`)
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(name: str | None = None) -> torch.device:
    """A torch device from `cpu`, `cuda`, `cuda:N`, `mps` or `auto` (CUDA when visible, else CPU); default CPU.

    A device this machine does not have is refused with one error that says what to pass instead.
    """
    name = (name or DEFAULT_DEVICE).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise SeqChatInputError(f"unknown device '{name}': use cpu, cuda, cuda:N, mps or auto") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise SeqChatInputError(f"device '{name}': no CUDA GPU is visible to PyTorch here; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise SeqChatInputError(
                f"device '{name}': this machine has {torch.cuda.device_count()} CUDA device(s), "
                f"numbered 0..{torch.cuda.device_count() - 1}"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise SeqChatInputError(f"device '{name}': Apple MPS is not available here; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise SeqChatInputError(f"unsupported device '{name}': use cpu, cuda, cuda:N, mps or auto")
    return dev


def resolve_dtype(name: str | None = None) -> torch.dtype:
    """The torch dtype named by `float32` (default), `bfloat16` or `float16`."""
    key = (name or DEFAULT_DTYPE).strip().lower()
    if key not in DTYPES:
        raise SeqChatInputError(f"unknown dtype '{name}': use one of {', '.join(DTYPES)}")
    return DTYPES[key]
