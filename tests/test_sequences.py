"""Sequences: alphabets, normalisation and FASTA errors."""

import gzip

import pytest

from seqchat.errors import SeqChatInputError
from seqchat.modeling.sequences import as_named_sequences, guess_modality, make_sequence, read_fasta


def test_normalises_case_whitespace_and_rna_dna():
    assert make_sequence("acg u\nt", "dna").residues == "ACGTT"
    assert make_sequence("ACGT", "rna").residues == "ACGU"
    assert make_sequence("acgu", "RNA").as_dna() == "ACGT"


def test_invalid_character_names_record_character_and_position():
    with pytest.raises(SeqChatInputError, match=r"sequence 'chr1': character 'X' at position 4 is not valid DNA"):
        make_sequence("ACGXT", "dna", name="chr1")


def test_protein_letters_in_dna_hint_at_modality():
    with pytest.raises(SeqChatInputError, match="is this a protein"):
        make_sequence("MKVLE", "dna")


def test_protein_alphabet_accepts_ambiguity_codes_and_stop():
    assert make_sequence("mkvXBZUO*", "protein").residues == "MKVXBZUO*"
    with pytest.raises(SeqChatInputError, match="character 'J' at position 2"):
        make_sequence("MJ", "protein")


def test_unknown_modality_and_empty_and_too_long():
    with pytest.raises(SeqChatInputError, match="unknown modality 'peptide'"):
        make_sequence("ACGT", "peptide")
    with pytest.raises(SeqChatInputError, match="is empty"):
        make_sequence("  ", "dna")
    with pytest.raises(SeqChatInputError, match="10 residues long; the limit is 5"):
        make_sequence("A" * 10, "dna", max_length=5)


def test_guess_modality():
    assert guess_modality("ACGTN") == "dna"
    assert guess_modality("ACGU") == "rna"
    assert guess_modality("MKWV") == "protein"


def test_read_fasta_text_file_and_gzip(tmp_path):
    text = ">s1 first\nACGT\nacgt\n>s2\nMKV\n"
    seqs = read_fasta(text)
    assert [(s.name, s.residues, s.modality) for s in seqs] == [("s1", "ACGTACGT", "dna"), ("s2", "MKV", "protein")]
    p = tmp_path / "x.fa.gz"
    with gzip.open(p, "wt") as fh:
        fh.write(text)
    assert [s.name for s in read_fasta(p)] == ["s1", "s2"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("ACGT\n>s1\nACGT\n", "first non-empty line must start with '>'"),
        (">s1\nACGT\n>s1\nACGT\n", "two records share the id 's1'"),
        (">s1\nAC#GT\n", "character '#' at position 3"),
        (">\nACGT\n", "empty header"),
    ],
)
def test_malformed_fasta_errors(text, message):
    with pytest.raises(SeqChatInputError, match=message):
        read_fasta(text, modality="dna")


def test_missing_file_and_named_collections(tmp_path):
    with pytest.raises(SeqChatInputError, match="does not exist"):
        read_fasta(tmp_path / "nope.fa")
    named = as_named_sequences({"a": "ACGT", "b": "MKV"})
    assert named["b"].modality == "protein"
