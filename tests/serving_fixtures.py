"""Fixtures shared by the serving tests: a tiny saved model folder and a loaded `SeqChat` around it."""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Iterator

import pytest
import torch

from conftest import TINY_DECODER, tiny_config

# an untied output head makes the tiny random decoder write words instead of repeating a newline
UNTIED = {**TINY_DECODER, "tie_word_embeddings": False}
DNA = "TGCCCGTCTCACTGGTGAAAAGAAAAACCACCCTGGCGCCCAATACGCAAACCGCCTCTCCCCGCGCGTTGGCCGATTCATTAATGCAGCTGGCACG"
PROT = "MKPVTLYDVAEYAGVSYQTVSRVVNQASHVSAKTREKVEAAMAELNYIPNR"
FASTA = f">lacZ_upstream E. coli\n{DNA}\n>lacI repressor\n{PROT}\n"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, tokenizer):
    """A tiny random seqchat model saved with save_pretrained (a model folder like a trained one)."""
    from seqchat.model import SeqChatForConditionalGeneration

    torch.manual_seed(0)
    model = SeqChatForConditionalGeneration(
        tiny_config(decoder_config=copy.deepcopy(UNTIED)), tokenizer=copy.deepcopy(tokenizer)
    )
    d = tmp_path_factory.mktemp("tiny_model")
    model.save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def bot(model_dir):
    """The tiny model loaded through the public API."""
    from seqchat.serving import SeqChat

    return SeqChat.load(model=model_dir)


@pytest.fixture
def fasta_file(tmp_path):
    """A two-record FASTA file (DNA and protein)."""
    p = tmp_path / "example.fa"
    p.write_text(FASTA)
    return p


@contextlib.contextmanager
def slow_steps(bot, seconds: float) -> Iterator[None]:
    """Make each decoder step of `bot`'s real model take `seconds` longer, so a streamed answer can be watched."""
    decoder = bot.model.decoder
    real = decoder.forward

    def slow(*a, **k):
        time.sleep(seconds)
        return real(*a, **k)

    decoder.forward = slow
    try:
        yield
    finally:
        del decoder.forward  # the class's forward again
