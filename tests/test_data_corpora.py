"""Pretraining corpora: both strands, N runs cut out, never a test-split sequence."""

from __future__ import annotations

import pytest

from seqchat.data import corpora as C
from seqchat.data.build import task_splits
from seqchat.data.records import reverse_complement, seq_key
from seqchat.tasks.registry import TASKS

pytestmark = pytest.mark.integration


def test_n_runs_split_segments():
    chrom = "ACGTACGTNNNNNACGTTTTTTTTNACGRACG"
    assert list(C.n_free_segments(chrom, 1)) == [(0, "ACGTACGT"), (13, "ACGTTTTTTTT"), (25, "ACG"), (29, "ACG")]
    assert list(C.n_free_segments(chrom, 5)) == [(0, "ACGTACGT"), (13, "ACGTTTTTTTT")]


def test_windows_cover_both_strands_and_skip_test_kmers():
    wins = list(C.dna_windows(window=500, max_windows=40))
    assert len(wins) == 40
    for f, r in zip(wins[::2], wins[1::2], strict=True):
        assert f.name.endswith("_f") and r.name.endswith("_r") and r.residues == reverse_complement(f.residues)
        assert set(f.residues) <= set("ACGT") and 100 <= len(f) <= 500
    banned = C.dna_test_kmers()
    assert banned and not any(C.shares_test_kmer(w.residues, banned) for w in wins)
    # a window made from a real test sequence is rejected, on either strand
    test_seq = seq_key(task_splits("yeast_h3").test[0].residues)
    assert C.shares_test_kmer(test_seq, banned) and C.shares_test_kmer(reverse_complement(test_seq), banned)


def test_protein_and_rna_corpora_hold_no_test_sequence():
    prots = list(C.protein_sequences())
    assert len(prots) > 20000
    test = C.protein_test_set()
    assert test and not any(p.residues in test for p in prots)
    assert len({p.residues for p in prots}) == len(prots)
    rna = list(C.rna_sequences(max_n=5000))
    rna_test = {seq_key(e.residues) for n, t in TASKS.items() if t.modality == "rna" for e in task_splits(n).test}
    assert rna and not any(seq_key(s.residues) in rna_test for s in rna)
