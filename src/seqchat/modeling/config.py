"""The composite seqchat config: one encoder per modality, the projector, the decoder and K."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from seqchat.errors import SeqChatInputError


def _default_encoders() -> dict[str, dict[str, Any]]:
    return {
        "dna": {"source": "nt-small", "tokenizer": "nt_6mer", "window": 512, "overlap": 10},
        "protein": {"source": "esm-small", "tokenizer": "esm_residue", "window": 1022, "overlap": 10},
    }


@dataclass
class SeqChatConfig:
    """Everything needed to rebuild a seqchat model; saved as config.json next to the trainable weights."""

    decoder: str = "smollm2-135m-instruct"
    # random-init decoder from this HF config dict instead of loading weights (tiny test models)
    decoder_config: dict[str, Any] | None = None
    tokenizer: str | None = None  # defaults to `decoder`
    # encoder name -> {source: builtin name | folder | hub id, tokenizer, window, overlap, hf_config?}
    encoders: dict[str, dict[str, Any]] = field(default_factory=_default_encoders)
    # modality -> encoder name; RNA reads through the DNA encoder (U is tokenized as T)
    modalities: dict[str, str] = field(default_factory=lambda: {"dna": "dna", "rna": "dna", "protein": "protein"})
    projector: dict[str, Any] = field(
        default_factory=lambda: {"type": "english_perceiver", "num_queries": 64, "num_layers": 3, "num_heads": 8,
                                 "ffn_mult": 2}
    )  # fmt: skip
    placeholder_token: str = "<|seq|>"
    max_sequence_length: int = 100_000
    freeze_decoder: bool = True
    freeze_encoders: bool = False
    lora: dict[str, Any] | None = None  # e.g. {r: 8, alpha: 16, dropout: 0.05, target_modules: [q_proj, v_proj]}
    system_prompt: str | None = None

    def __post_init__(self) -> None:
        for modality, enc in self.modalities.items():
            if enc not in self.encoders:
                raise SeqChatInputError(f"config: modality '{modality}' names encoder '{enc}', which is not defined")

    @property
    def tokenizer_source(self) -> str:
        """Where the decoder tokenizer comes from."""
        return self.tokenizer or self.decoder

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON/YAML serialisable)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeqChatConfig:
        """Build from a dict, rejecting unknown keys with a clear message."""
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise SeqChatInputError(f"config: unknown keys {sorted(unknown)}; valid keys: {sorted(known)}")
        return cls(**d)

    @classmethod
    def from_file(cls, path: str | Path) -> SeqChatConfig:
        """Load from a YAML or JSON file (a YAML file may hold the model config under `model:`)."""
        p = Path(path)
        if not p.exists():
            raise SeqChatInputError(f"config file '{p}' does not exist")
        # YAML 1.1 reads "1e-05" as a string, so JSON files go through the JSON parser
        data = json.loads(p.read_text()) if p.suffix == ".json" else yaml.safe_load(p.read_text())
        if isinstance(data, dict) and "model" in data and isinstance(data["model"], dict):
            data = data["model"]
        return cls.from_dict(data or {})

    def save(self, directory: str | Path) -> None:
        """Write config.json into a model folder."""
        Path(directory, "config.json").write_text(json.dumps(self.to_dict(), indent=2))
