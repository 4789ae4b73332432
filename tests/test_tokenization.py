"""Sequence tokenizers and windows."""

from seqchat.modeling.tokenization import (
    get_sequence_tokenizer,
    nucleotide_transformer_vocab,
    split_windows,
    window_starts,
)


def test_nt_vocabulary_layout_matches_nucleotide_transformer():
    vocab = nucleotide_transformer_vocab(6)
    assert len(vocab) == 4107
    assert vocab[:6] == ("<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>")
    assert vocab[6] == "AAAAAA" and vocab[7] == "AAAAAT" and vocab[4101] == "GGGGGG"
    assert vocab[-5:] == ("A", "T", "C", "G", "N")


def test_nt_tokenizer_non_overlapping_kmers_with_single_nucleotide_fallback():
    tok = get_sequence_tokenizer("nt_6mer")
    assert tok.tokenize("ACGTACGTNACGTAAACCCGGG") == ["ACGTAC", "G", "T", "N", "ACGTAA", "ACCCGG", "G"]
    assert tok.tokenize("ACGUAC") == ["ACGTAC"]  # RNA reads as DNA
    ids = tok.encode("AAAAAAC")
    assert ids == [3, 6, tok.id("C")]


def test_esm_tokenizer_matches_esm2_ids():
    tok = get_sequence_tokenizer("esm_residue")
    assert tok.vocab_size == 33
    assert tok.encode("LAG*") == [0, 4, 5, 6, 29, 2]
    assert tok.pad_token_id == 1 and tok.mask_token_id == 32


def test_windows_cover_sequence_with_overlap():
    s = "".join("ACGT"[i % 4] for i in range(1200))
    starts = window_starts(len(s), 512, 10)
    assert starts == [0, 502, 1004]
    wins = split_windows(s, 512, 10)
    assert wins[0][-10:] == wins[1][:10]
    assert starts[-1] + len(wins[-1]) == len(s)
    assert split_windows("ACGT", 512, 10) == ["ACGT"]
