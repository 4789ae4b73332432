"""Fixtures shared by the serving tests: a tiny saved model folder and a loaded `SeqChat` around it."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import Iterator

import pytest
import torch

from conftest import TINY_DECODER, tiny_config
from seqchat.serving.worker import BatchingWorker

# an untied output head makes the tiny random decoder write words instead of repeating a newline
UNTIED = {**TINY_DECODER, "tie_word_embeddings": False}
DNA = "TGCCCGTCTCACTGGTGAAAAGAAAAACCACCCTGGCGCCCAATACGCAAACCGCCTCTCCCCGCGCGTTGGCCGATTCATTAATGCAGCTGGCACG"
PROT = "MKPVTLYDVAEYAGVSYQTVSRVVNQASHVSAKTREKVEAAMAELNYIPNR"
FASTA = f">lacZ_upstream E. coli\n{DNA}\n>lacI repressor\n{PROT}\n"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, tokenizer):
    """A tiny random seqchat model saved with save_pretrained (a model folder like a trained one)."""
    from seqchat.modeling.model import SeqChatForConditionalGeneration

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


def run_one_worker(bot, limits, make_jobs):
    """Queue the jobs `make_jobs(loop)` builds before a fresh worker starts (so they can share batches), run them
    to completion and stop the worker; returns (worker, results in job order)."""
    worker = BatchingWorker(bot, limits)
    loop = asyncio.new_event_loop()
    try:
        jobs = make_jobs(loop)
        for j in jobs:
            worker.jobs.put(j)
        worker.start()
        results = loop.run_until_complete(asyncio.gather(*(j.future for j in jobs)))
    finally:
        worker.stop()
        loop.close()
    return worker, results
