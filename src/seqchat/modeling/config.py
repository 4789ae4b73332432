"""The composite seqchat config: one encoder per modality, the projector (with K), the decoder and LoRA.

Every model setting has its one default here: `EncoderConfig` (kind, window, overlap, ...), `ProjectorConfig`
(K = `num_queries` and each projector type's settings), `LoraConfig`, and `SeqChatConfig` (decoder, the
encoders per modality, `max_sequence_length`, freezing). A YAML or a
saved config.json overrides what it names; unknown keys are refused with the list of valid ones.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from seqchat.errors import SeqChatInputError


def _default_encoders() -> dict[str, dict[str, Any]]:
    return {
        "dna": {"source": "nt-small", "tokenizer": "nt_6mer", "window": 512, "overlap": 10},
        "protein": {"source": "esm-small", "tokenizer": "esm_residue", "window": 1022, "overlap": 10},
    }


def _typed(cls: type, d: Any, what: str) -> Any:
    """`cls` from a mapping, refusing unknown keys with a clear message."""
    if not isinstance(d, dict):
        raise SeqChatInputError(f"config: {what} must be a mapping, got {type(d).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = set(d) - known
    if unknown:
        raise SeqChatInputError(f"config: unknown {what} keys {sorted(unknown)}; valid keys: {sorted(known)}")
    return cls(**d)


def merge_mappings(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`base` with `over` merged in, nested mappings key by key."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge_mappings(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML or JSON config file as a mapping. A recipe's `model: {include: FILE, ...}` starts from FILE's
    model (a path relative to the including file) and overrides the keys it names."""
    p = Path(path)
    if not p.exists():
        raise SeqChatInputError(f"config file '{p}' does not exist")
    # YAML 1.1 reads "1e-05" as a string, so JSON files go through the JSON parser
    data = (json.loads(p.read_text()) if p.suffix == ".json" else yaml.safe_load(p.read_text())) or {}
    model = data.get("model") if isinstance(data, dict) else None
    if isinstance(model, dict) and "include" in model:
        over = {k: v for k, v in model.items() if k != "include"}
        base = read_config_file(p.parent / model["include"])
        base_model = base["model"] if isinstance(base.get("model"), dict) else base
        data = {**data, "model": merge_mappings(base_model, over)}
    return data


@dataclass
class EncoderConfig:
    """The settings every sequence encoder entry shares, with their one default each. An entry of
    `SeqChatConfig.encoders` stays a mapping (a `features` encoder adds keys of its own and a saved model adds
    its encoder's shapes); `EncoderConfig.of(entry)` reads the shared settings from it."""

    kind: str = "hf"  # a key of modeling.encoders.ENCODER_KINDS: hf (any Hugging Face encoder), features
    source: str | None = None  # hf: a built-in name, a folder or a hub id
    tokenizer: str | None = None  # a seqchat.modeling.tokenization name (nt_6mer, esm_residue)
    window: int = 512  # residues (or 6-mer tokens' residues) the encoder reads at once
    overlap: int = 10  # residues shared by neighbouring windows
    init_from: str | None = None  # a folder of trained weights
    hf_config: dict[str, Any] | None = None  # random-init from this HF config instead (tiny test encoders)

    @classmethod
    def of(cls, entry: dict[str, Any]) -> EncoderConfig:
        """The shared settings of one encoder entry (its other keys are the kind's own)."""
        return cls(**{f.name: entry[f.name] for f in fields(cls) if entry.get(f.name) is not None})


@dataclass
class ProjectorConfig:
    """The projector: its registry name (`seqchat.modeling.projectors.PROJECTORS`) and every setting a
    projector type reads; each type ignores the settings of the others."""

    type: str = "english_perceiver"
    num_queries: int = 32  # K, soft tokens per sequence (ChatNT used 64; halved to fit CPU training)
    # perceiver, english_perceiver
    num_layers: int = 3
    num_heads: int = 8
    ffn_mult: int = 2
    # mlp: one token per encoder window (GeneChat) instead of K segments
    pool_windows: bool = False
    # task_router (see TaskRoutedProjector)
    route_dim: int = 256
    hidden: int = 512
    route_loss_weight: float = 1.0
    word_weights: bool = True
    gate_slots: int = 0
    hard_route: bool = False
    ngram_buckets: int = 0
    ngram_dim: int = 64

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProjectorConfig:
        """Build from a mapping (a YAML's `projector:`), rejecting unknown keys."""
        return _typed(cls, d, "projector")

    def settings(self) -> dict[str, Any]:
        """Every setting but `type`: the projector class's keyword arguments."""
        return {k: v for k, v in asdict(self).items() if k != "type"}


@dataclass
class LoraConfig:
    """LoRA adapters on the decoder (peft)."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoraConfig:
        """Build from a mapping (a YAML's `lora:`), rejecting unknown keys."""
        return _typed(cls, d, "lora")


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
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)
    placeholder_token: str = "<|seq|>"
    max_sequence_length: int = 100_000
    freeze_decoder: bool = True
    freeze_encoders: bool = False
    lora: LoraConfig | None = None  # LoRA adapters on the decoder (None: the decoder stays as loaded)
    system_prompt: str | None = None

    def __post_init__(self) -> None:
        # YAML and JSON give the typed parts as mappings
        if not isinstance(self.projector, ProjectorConfig):
            self.projector = ProjectorConfig.from_dict(self.projector)
        if not isinstance(self.lora, LoraConfig | None):
            self.lora = LoraConfig.from_dict(self.lora) if self.lora else None  # an empty mapping: no LoRA
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
        """Load from a YAML or JSON file (a YAML file may hold the model config under `model:`, which may
        `include:` another model YAML)."""
        data = read_config_file(path)
        if isinstance(data, dict) and "model" in data and isinstance(data["model"], dict):
            data = data["model"]
        return cls.from_dict(data or {})

    def save(self, directory: str | Path) -> None:
        """Write config.json into a model folder."""
        Path(directory, "config.json").write_text(json.dumps(self.to_dict(), indent=2))
