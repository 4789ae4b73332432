"""Homology-transfer baselines, embedding retrieval (encoders and k-mers) and the gene-function report."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqchat.evaluation import homology as H
from seqchat.evaluation import retrieval as R
from seqchat.modeling.encoders import BUILTIN_ENCODERS, SequenceEncoder, build_encoder_model

# real protein fragments (E. coli ThrA, ThrB, ThrC N-termini) and point-mutated copies
THRA = "MRVLKFGGTSVANAERFLRVADILESNARQGQVATVLSAPAKITNHLVAMIEKTISGQDALPNISDAERIFAELLTGLAAAQ"
THRB = "MVKVYAPASSANMSVGFDVLGAAVTPVDGALLGDVVTVEAAETFSLNNLGRFADKLPSEPRENIVYQCWERFCQELGKQIPVAMT"
THRC = "MKLYNLKDHNEQVSFAQAVTQGLGKNQGLFFPHDLPEFSLTEIDEMLKLDFVTRSAKILSAFIGDEIPQEILEERVRAAFAFPAP"


def _mutate(s: str, positions: tuple[int, ...]) -> str:
    out = list(s)
    for p in positions:
        out[p] = "W" if out[p] != "W" else "C"
    return "".join(out)


def _item(protein: str, target, group: str = "") -> H.Item:
    return H.Item({"protein": protein, "dna": ""}, target, group)


def test_transfer_copies_the_nearest_reference_within_its_group():
    refs = [
        _item(THRA, ["1.1.1.3", "2.7.2.4"], "g1"),
        _item(THRB, ["2.7.1.39"], "g1"),
        _item(THRC, ["4.2.3.1"], "g2"),
    ]
    queries = [_item(_mutate(THRB, (5, 30, 60)), None, "g1"), _item(_mutate(THRA, (10, 40)), None, "g1"),
               _item(_mutate(THRB, (5,)), None, "g2")]  # fmt: skip
    preds = H.transfer_predictions(queries, refs, "protein_kmer")
    # the third query resembles ThrB, but only g2's reference (ThrC) may be copied
    assert preds == [["2.7.1.39"], ["1.1.1.3", "2.7.2.4"], ["4.2.3.1"]]
    assert H.majority_predictions(queries, refs + [_item(THRB, ["2.7.1.39"], "g1")]) == [["2.7.1.39"]] * 2 + [
        ["4.2.3.1"]
    ]
    scores = H.score(preds, [["2.7.1.39"], ["1.1.1.3", "2.7.2.4"], ["4.2.3.2"]], "ec")
    assert scores["ec_exact_match"] == pytest.approx(2 / 3)
    assert scores["ec_hprecision"] == pytest.approx((4 + 8 + 3) / 16)


def test_unknown_search_method_is_a_clear_error():
    with pytest.raises(Exception, match="unknown neighbour search"):
        H.transfer_predictions([_item(THRA, None)], [_item(THRB, [])], "blast")


@pytest.mark.skipif(not H.mmseqs_available(), reason="Debian mmseqs2 not installed")
def test_mmseqs_best_hit_finds_the_mutated_original():
    refs = [THRA, THRB, THRC]
    best = H.mmseqs_best_hits(
        [_mutate(THRC, (3, 20, 50)), _mutate(THRA, (7,)), "MSTNPKPQRKTKRNTNRRPQDVKFPGG"], refs
    )
    assert best.tolist() == [2, 0, -1]


def _manual_embedding(enc: SequenceEncoder, residues: str) -> torch.Tensor:
    from seqchat.modeling.tokenization import split_windows

    total, count = 0, 0
    for w in split_windows(residues, enc.window, enc.overlap):
        ids = torch.tensor([enc.tokenizer.encode(w)])
        hidden = enc(ids, torch.ones_like(ids))[0]
        keep = torch.tensor([i not in enc.tokenizer.special_ids for i in ids[0].tolist()])
        total = total + hidden[keep].sum(0)
        count += int(keep.sum())
    return total / count


def test_encoder_embedding_is_the_token_mean_over_all_windows():
    torch.manual_seed(0)
    enc = SequenceEncoder(build_encoder_model({"source": "nt-tiny"}), "nt_6mer", window=60, overlap=6).eval()
    seqs = [THRA_DNA, THRA_DNA[:50], THRA_DNA[:200] + "NNN" + THRA_DNA[200:260]]
    got = R.encoder_embeddings(enc, seqs, batch_windows=3)
    with torch.no_grad():
        want = torch.stack([_manual_embedding(enc, s) for s in seqs]).numpy()
    assert got.shape == (3, enc.hidden_size)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_encoder_from_a_seqchat_folder_and_from_an_hf_folder(make_model, tmp_path, tokenizer):
    model = make_model(seed=1)
    model.save_pretrained(tmp_path / "chat")
    from_chat = R.load_sequence_encoder(str(tmp_path / "chat"), "dna")
    ref = model.encoders["dna"]
    ids = torch.tensor([ref.tokenizer.encode(THRA_DNA[:60])])
    with torch.no_grad():
        torch.testing.assert_close(from_chat(ids, torch.ones_like(ids)), ref(ids, torch.ones_like(ids)))
    assert (from_chat.window, from_chat.overlap) == (ref.window, ref.overlap)
    ref.model.save_pretrained(tmp_path / "hf")
    from_hf = R.load_sequence_encoder(str(tmp_path / "hf"), "dna", window=60)
    with torch.no_grad():
        torch.testing.assert_close(from_hf(ids, torch.ones_like(ids)), ref(ids, torch.ones_like(ids)))
    with pytest.raises(Exception, match="vocabulary"):
        R.load_sequence_encoder(str(tmp_path / "hf"), "protein")
    assert "nt-tiny" in BUILTIN_ENCODERS and R.load_sequence_encoder("nt-tiny", "dna").window == 512


def test_retrieval_scores_on_separated_and_mixed_embeddings():
    rng = np.random.default_rng(0)
    ecs = [["1.1.1.1"]] * 10 + [["2.7.1.1"]] * 10
    centres = np.repeat(np.eye(2) * 10, 10, axis=0)
    refs = centres + rng.normal(0, 0.1, centres.shape)
    queries = centres[::5] + rng.normal(0, 0.1, (4, 2))
    s = R.retrieval_scores(queries, ecs[::5], refs, ecs)
    assert s["hp@1"] == 1.0 and s["silhouette_class"] > 0.9 and s["n_queries"] == 4
    shuffled = R.retrieval_scores(rng.normal(size=(4, 2)), ecs[::5], rng.normal(size=(20, 2)), ecs)
    assert shuffled["silhouette_class"] < 0.3


def test_kmer_embedding_blocks_are_frequencies():
    q, r = R.kmer_embeddings(["ACGTACGTAA"], ["ACGTTTGACA", "GGGCCCAAAT"], "dna")
    assert q.shape[1] == r.shape[1] and np.allclose(r.sum(1), len(R.KMER_SIZES["dna"]))


THRA_DNA = (
    "ATGCGAGTGTTGAAGTTCGGCGGTACATCAGTGGCAAATGCAGAACGTTTTCTGCGTGTTGCCGATATTCTGGAAAGCAATGCCAGGCAGGGGCAGGTGGCCACC"
    "GTCCTCTCTGCCCCCGCCAAAATCACCAACCACCTGGTGGCGATGATTGAAAAAACCATTAGCGGCCAGGATGCTTTACCCAATATCAGCGATGCCGAACGTATT"
    "TTTGCCGAACTTTTGACGGGACTCGCCGCCGCCCAGCCGGGGTTCCCGCTGGCGCAATTGAAAACTTTCGTCGATCAGGAATTTGCCCAAATAAAACATGTCCTGC"
)


@pytest.mark.integration
def test_report_page_has_data_anchors_baselines_and_three_examples():
    from seqchat.data.build import task_splits
    from seqchat.data.paths import data_dir
    from seqchat.evaluation.gene_report import gene_data_summary, render_report

    data = gene_data_summary(data_dir())
    n_test = len(task_splits("gene_description").test)
    text = {m: 0.1 for m in ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l")}
    ec = {m: 0.2 for m in ("ec_exact_match", "ec_hprecision", "ec_hrecall", "ec_hf1")}
    res = {
        "seconds": 1.0, "data_version": "abc", "meteor_wordnet": True, "mmseqs": False,
        "data": {k: v for k, v in data.items() if k not in ("records", "split")},
        "transfer": {
            "gene_description": {"results": {"protein_kmer": {"all": {"n": n_test, **text}}},
                                 "predictions": {"protein_kmer": ["predicted text"] * n_test}},
            "gene_ec": {"results": {"protein_kmer": {"novel_ec": {"n": 3, **ec}}}},
            "protein_ec": {"results": {"majority": {"all": {"n": 392, **ec}}}},
        },
        "retrieval": {"gene_ec": {"k-mer frequencies": {"all": {"n_queries": 5, "hp@1": 0.5, "hp@3": 0.6, "hp@5": 0.7,
                                                                "silhouette_class": 0.0, "silhouette_ec": -0.1}}}},
    }  # fmt: skip
    page = render_report(res, "seqchat gene-function report --out x.md")
    assert "`seqchat gene-function report --out x.md`" in page and "Data version abc" in page
    assert "| GeneChat (anchor) | NCBI genes | - | 0.194 | - | - | 0.082 | 0.273 | - |" in page
    assert "0.33-0.66" in page and "| gene_ec | 2382 | 177 | 590 | 213 | 377 |" in page
    assert page.count("  - prediction: predicted text") == 3
