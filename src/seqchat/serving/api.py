"""The Python API: load a model once, ask questions about named sequences."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from seqchat.config import SeqChatConfig
from seqchat.errors import SeqChatInputError
from seqchat.processor import referenced_subset
from seqchat.sequences import Sequence, as_named_sequences, read_fasta

DEFAULT_CONFIG = "seqchat-small"


def shipped_model_dir() -> Path | None:
    """The trained default model shipped inside the package, if this build has one."""
    d = Path(str(resources.files("seqchat"))) / "weights" / DEFAULT_CONFIG
    return d if (d / "config.json").exists() else None


def default_config_path() -> Path:
    """The YAML of the default architecture."""
    here = Path(__file__).resolve()
    for base in (here.parents[3] / "configs" / "model", Path(str(resources.files("seqchat"))) / "configs"):
        p = base / f"{DEFAULT_CONFIG}.yaml"
        if p.exists():
            return p
    raise SeqChatInputError(f"cannot find the default config {DEFAULT_CONFIG}.yaml: pass --config")


class SeqChat:
    """A loaded seqchat model with a chat-style interface."""

    def __init__(self, model: Any):
        self.model = model.eval()

    @classmethod
    def load(cls, model: str | Path | None = None, config: str | Path | None = None) -> SeqChat:
        """Load a trained model folder, or build an (untrained) architecture from a config; default: shipped model."""
        from seqchat.model import SeqChatForConditionalGeneration

        torch.set_grad_enabled(False)
        if model is not None:
            return cls(SeqChatForConditionalGeneration.from_pretrained(model))
        if config is None and shipped_model_dir() is not None:
            return cls(SeqChatForConditionalGeneration.from_pretrained(shipped_model_dir()))
        cfg = SeqChatConfig.from_file(config or default_config_path())
        print(
            "seqchat: warning: no trained model given; the encoders and projector are randomly initialised, "
            "so answers ignore the sequences",
            file=sys.stderr,
        )
        return cls(SeqChatForConditionalGeneration(cfg))

    def ask(
        self,
        question: str,
        sequences: Mapping[str, Sequence | str] | list[Sequence | str] | None = None,
        history: list[dict[str, str]] | None = None,
        max_new_tokens: int = 128,
        stream: Callable[[str], None] | None = None,
    ) -> str:
        """Answer one question (with an optional earlier conversation) about the given sequences.

        A mapping of sequences is a pool (e.g. a FASTA file): only those the conversation names are read.
        """
        messages = list(history or []) + [{"role": "user", "content": question}]
        if isinstance(sequences, Mapping):
            sequences = referenced_subset(messages, as_named_sequences(sequences))
        proc = self.model.processor
        batch = proc(messages, sequences, add_generation_prompt=True)
        streamer = None
        if stream is not None:
            tokens: list[int] = []
            printed = [""]

            def streamer(t: int) -> None:
                tokens.append(t)
                text = proc.tokenizer.decode(tokens, skip_special_tokens=True)
                stream(text[len(printed[0]) :])
                printed[0] = text

        out = self.model.generate(batch, max_new_tokens=max_new_tokens, streamer=streamer)[0]
        return proc.tokenizer.decode(out, skip_special_tokens=True).strip()

    @staticmethod
    def read_fasta(path: str | Path, modality: str | None = None) -> dict[str, Sequence]:
        """Named sequences from a FASTA file, keyed by record id."""
        return {s.name: s for s in read_fasta(path, modality)}
