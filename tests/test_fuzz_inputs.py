"""Fuzzing (Hypothesis): random bytes and random FASTA-like texts into the FASTA reader and the processor
end in a parsed result or one SeqChatInputError, never another exception."""

import copy
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import tiny_config
from seqchat.errors import SeqChatInputError
from seqchat.modeling.processor import SeqChatProcessor
from seqchat.modeling.sequences import read_fasta

FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                database=None)

# residue-ish letters (valid and invalid for every modality), FASTA punctuation and blanks
RESIDUES = st.text(alphabet="ACGTUNacgtuMKLXJBZO*-. \t\r", max_size=300)
HEADER = st.text(alphabet=st.characters(blacklist_characters="\n\r"), max_size=30)
RECORD = st.tuples(HEADER, st.lists(RESIDUES, max_size=4)).map(lambda r: ">" + r[0] + "\n" + "\n".join(r[1]))
FASTA_TEXT = st.lists(st.one_of(RECORD, RESIDUES, st.just("")), min_size=0, max_size=6).map("\n".join)


@pytest.fixture(scope="module")
def processor(tokenizer):
    return SeqChatProcessor(copy.deepcopy(tokenizer), tiny_config())


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def _parsed_or_input_error(fn):
    try:
        return fn()
    except SeqChatInputError:
        return None


@FUZZ
@given(data=st.binary(max_size=2000), gz=st.booleans())
def test_random_bytes_into_the_fasta_reader(workdir, data, gz):
    path = workdir / ("in.fa.gz" if gz else "in.fa")
    path.write_bytes(data)
    seqs = _parsed_or_input_error(lambda: read_fasta(path))
    assert seqs is None or (seqs and all(len(s) > 0 for s in seqs))


@FUZZ
@given(text=FASTA_TEXT, tag=st.booleans())
def test_random_fasta_like_texts_into_the_reader_and_the_processor(processor, text, tag):
    seqs = _parsed_or_input_error(lambda: read_fasta(text.splitlines(keepends=True)))
    if not seqs:
        return
    refs = " and ".join(f"<{s.modality}>" if tag else f"@{s.name}" for s in seqs)
    messages = [{"role": "user", "content": f"Compare {refs}."}]
    batch = _parsed_or_input_error(lambda: processor(messages, seqs, add_generation_prompt=True))
    if batch is not None:
        assert batch["input_ids"].shape[0] == 1
        assert len(batch["occurrences"]) == len(seqs)
