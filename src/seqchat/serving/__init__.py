"""Using a trained model: the Python API (`SeqChat`), batch prediction, attribution and the HTTP server.

What belongs here: code that loads a model and answers with it for a caller (a Python program, a CSV, an
HTTP client). Argument parsing belongs in `seqchat.cli`, model code in `seqchat.modeling`, task logic in
`seqchat.tasks`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SeqChat"]


def __getattr__(name: str) -> Any:
    """`from seqchat.serving import SeqChat`, loaded on first use so that light serving modules stay light."""
    if name == "SeqChat":
        from seqchat.serving.api import SeqChat  # start-up: the model code (transformers) only when asked for

        return SeqChat
    raise AttributeError(f"module 'seqchat.serving' has no attribute '{name}'")
