"""Using seqchat: Python API, command line chat, batch prediction and HTTP serving."""

from seqchat.serving.api import SeqChat

__all__ = ["SeqChat"]
