"""Sequence encoders: one adapter over any Hugging Face encoder, plus small built-in NT/ESM-style configs."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from seqchat.errors import SeqChatInputError
from seqchat.modeling.config import EncoderConfig
from seqchat.modeling.features import load_feature_encoder
from seqchat.modeling.tokenization import get_sequence_tokenizer, split_windows


def esm_config(vocab_size: int, mask_id: int, hidden: int, layers: int, heads: int, ffn: int) -> dict[str, Any]:
    """An ESM-architecture encoder config with rotary positions and no dropout."""
    return dict(
        model_type="esm", vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, intermediate_size=ffn, max_position_embeddings=1026,
        position_embedding_type="rotary", pad_token_id=1, mask_token_id=mask_id, token_dropout=False,
        emb_layer_norm_before=False, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, layer_norm_eps=1e-5,
    )  # fmt: skip


# Small ESM-architecture encoders (rotary positions) that the project pretrains itself; the real
# Nucleotide Transformer v2 / ESM-2 checkpoints share these vocabularies and load through the same path.
# NT ids: <pad>=1, <mask>=2 of 4107; ESM-2 ids: <pad>=1, <mask>=32 of 33.
BUILTIN_ENCODERS: dict[str, dict[str, Any]] = {
    "nt-small": dict(tokenizer="nt_6mer", config=esm_config(4107, 2, hidden=256, layers=6, heads=8, ffn=1024)),
    "esm-small": dict(tokenizer="esm_residue", config=esm_config(33, 32, hidden=256, layers=6, heads=8, ffn=1024)),
    # tiny variants for fast tests
    "nt-tiny": dict(tokenizer="nt_6mer", config=esm_config(4107, 2, hidden=32, layers=2, heads=4, ffn=64)),
    "esm-tiny": dict(tokenizer="esm_residue", config=esm_config(33, 32, hidden=24, layers=2, heads=4, ffn=48)),
}


def encoder_hf_config(spec: dict[str, Any]):
    """The Hugging Face config of an encoder spec (built-in name, embedded config, or a checkpoint)."""
    from transformers import AutoConfig

    if spec.get("hf_config"):
        cfg = dict(spec["hf_config"])
        return AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    if spec["source"] in BUILTIN_ENCODERS:
        cfg = dict(BUILTIN_ENCODERS[spec["source"]]["config"])
        return AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    return AutoConfig.from_pretrained(spec["source"])


def build_encoder_model(spec: dict[str, Any], load_weights: bool = True) -> nn.Module:
    """Instantiate the encoder: random init from a config, or pretrained weights from a folder/hub id."""
    from transformers import AutoModel

    remote = bool(spec.get("trust_remote_code", False))
    # `init_from` starts a built-in architecture from a pretrained folder (seqchat pretrain-encoder)
    weights = spec.get("init_from") or (spec["source"] if spec["source"] not in BUILTIN_ENCODERS else None)
    if load_weights and weights:
        model = AutoModel.from_pretrained(weights, trust_remote_code=remote)
    else:
        model = AutoModel.from_config(encoder_hf_config(spec), trust_remote_code=remote)
    # a pooler head is never used; dropping it keeps DDP from waiting on gradients that never come
    if getattr(model, "pooler", None) is not None:
        model.pooler = None
    return model


class SequenceEncoder(nn.Module):
    """Runs a Hugging Face encoder over tokenized windows and returns per-window hidden states."""

    self_contained = False  # weights reload from the pretrained source unless trained or built-in

    def __init__(self, model: nn.Module, tokenizer_name: str, window: int, overlap: int):
        super().__init__()
        self.model = model
        self.tokenizer = get_sequence_tokenizer(tokenizer_name)
        self.window = window
        self.overlap = overlap

    @property
    def hidden_size(self) -> int:
        """Width of the encoder's hidden states."""
        return self.model.config.hidden_size

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(windows, tokens) ids → (windows, tokens, hidden) last hidden states."""
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def output_mask(self, content_mask: torch.Tensor) -> torch.Tensor:
        """Which output positions carry content: one hidden state per input token, so the content tokens."""
        return content_mask

    def saved_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The spec that rebuilds saved weights from config.json alone (no pretraining folder needed)."""
        hf = {**self.model.config.to_diff_dict(), "model_type": self.model.config.model_type}
        return {**spec, "hf_config": hf}


def _hf_encoder(spec: dict[str, Any], load_weights: bool) -> nn.Module:
    model = build_encoder_model(spec, load_weights=load_weights)
    return SequenceEncoder(model, spec["tokenizer"], spec["window"], spec["overlap"])


# encoder kinds, chosen by a spec's `kind` key: any Hugging Face encoder (NT, ESM-2, built-in) or k-mer features
ENCODER_KINDS = {"hf": _hf_encoder, "features": load_feature_encoder}


def build_sequence_encoder(spec: dict[str, Any], load_weights: bool = True) -> nn.Module:
    """The encoder module of one config entry, by its `kind` (default: a Hugging Face encoder)."""
    kind = EncoderConfig.of(spec).kind
    if kind not in ENCODER_KINDS:
        raise SeqChatInputError(f"encoder kind '{kind}' is not one of {sorted(ENCODER_KINDS)}")
    return ENCODER_KINDS[kind](spec, load_weights)


def gather_sequences(
    hidden: torch.Tensor,
    content_mask: torch.Tensor,
    window_to_seq: torch.Tensor,
    num_sequences: int,
    pool_windows: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate (or mean-pool per window) the windows of each sequence → padded (S, L, H) and mask."""
    if pool_windows:
        m = content_mask.unsqueeze(-1).to(hidden.dtype)
        per_window = [(hidden * m).sum(1) / m.sum(1).clamp(min=1)]  # (W, H)
        pieces = [per_window[0][window_to_seq == s] for s in range(num_sequences)]
    else:
        pieces = [hidden[window_to_seq == s][content_mask[window_to_seq == s]] for s in range(num_sequences)]
    return pad_pieces(pieces, hidden)


def pad_pieces(pieces: list[torch.Tensor], like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad a list of (L_i, H) tensors into (S, L, H) with a boolean mask."""
    longest = max(p.shape[0] for p in pieces)
    out = like.new_zeros(len(pieces), longest, like.shape[-1])
    mask = torch.zeros(len(pieces), longest, dtype=torch.bool, device=like.device)
    for i, p in enumerate(pieces):
        out[i, : p.shape[0]] = p
        mask[i, : p.shape[0]] = True
    return out, mask


def mean_pooled(
    encoder: SequenceEncoder, residues: list[str], max_windows: int, max_residues: int | None, device: torch.device
) -> torch.Tensor:
    """(batch, hidden): mean of content-token hidden states over a sequence's first windows."""
    tok = encoder.tokenizer
    windows, owner = [], []
    for i, r in enumerate(residues):
        for w in split_windows(r[:max_residues], encoder.window, encoder.overlap)[:max_windows]:
            windows.append(tok.encode(w))
            owner.append(i)
    longest = max(len(w) for w in windows)
    ids = torch.full((len(windows), longest), tok.pad_token_id, dtype=torch.long)
    for j, w in enumerate(windows):
        ids[j, : len(w)] = torch.tensor(w)
    content = torch.ones_like(ids, dtype=torch.bool)
    for sid in tok.special_ids:
        content &= ids != sid
    hidden = encoder(ids.to(device), (ids != tok.pad_token_id).long().to(device))
    m = content.to(device).unsqueeze(-1).to(hidden.dtype)
    sums, counts = (hidden * m).sum(1), m.sum(1)
    own = torch.tensor(owner, device=device)
    pooled = torch.zeros(len(residues), hidden.shape[-1], device=device, dtype=hidden.dtype).index_add_(0, own, sums)
    n = torch.zeros(len(residues), 1, device=device, dtype=hidden.dtype).index_add_(0, own, counts)
    return pooled / n.clamp(min=1)
