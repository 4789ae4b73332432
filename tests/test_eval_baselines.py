"""k-mer frequency baseline: real promoter data beats chance; regression and multi-class paths run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqchat.data.sampling import sample_examples
from seqchat.evaluation.baselines import (
    SELECT_GRID,
    fit_kmer_model,
    fit_kmer_selected,
    input_kmer_features,
    kmer_baseline,
    kmer_features,
)
from seqchat.evaluation.metrics import accuracy, mcc, pearson
from seqchat.evaluation.systems import fit_task_kmer, kmer_output, primary_score

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TATA = DATA / "dna" / "gue" / "prom" / "prom_core_tata"


def test_kmer_features_are_per_k_frequencies() -> None:
    feats = kmer_features((1, 2)).fit(["AACG"])
    x = feats.transform(["AACG"]).toarray()[0]
    names = list(feats.get_feature_names_out())
    # 1-mers A A C G -> A 2/4, C 1/4, G 1/4; 2-mers AA AC CG -> 1/3 each
    assert x[names.index("k1__A")] == pytest.approx(0.5)
    assert x[names.index("k2__AC")] == pytest.approx(1 / 3)
    assert x.sum() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="positive"):
        kmer_features(0)


@pytest.mark.integration
@pytest.mark.skipif(not TATA.is_dir(), reason="shared GUE data not present")
def test_kmer_baseline_beats_chance_on_core_promoters() -> None:
    train = pd.read_csv(TATA / "train.csv.gz")
    test = pd.read_csv(TATA / "test.csv.gz")
    # DATA.md: drop training sequences that also occur in the test split
    train = train[~train.sequence.isin(set(test.sequence))].sample(1000, random_state=0)
    pred = kmer_baseline(
        train.sequence.tolist(), train.label.to_numpy(), test.sequence.tolist(), "binary", k=(3, 4, 5, 6)
    )
    y = test.label.to_numpy()
    assert len(pred) == len(test) == 613
    # balanced classes: chance is MCC 0, accuracy 0.5 (measured ~0.49 MCC, ~0.74 accuracy)
    assert mcc(y, pred) > 0.25
    assert accuracy(y, pred) > 0.6


@pytest.mark.integration
@pytest.mark.skipif(not TATA.is_dir(), reason="shared GUE data not present")
def test_kmer_ridge_regression_learns_gc_content_of_real_sequences() -> None:
    seqs = pd.read_csv(TATA / "test.csv.gz").sequence.tolist()[:400]
    gc = np.array([(s.count("G") + s.count("C")) / len(s) for s in seqs])
    pred = kmer_baseline(seqs[:300], gc[:300], seqs[300:], "regression", k=3)
    assert pearson(gc[300:], pred) > 0.9


def test_kmer_multiclass_and_errors() -> None:
    rng = np.random.default_rng(0)
    motifs = {"a": "TATAAA", "b": "GGGCGG", "c": "CAATCT"}
    seqs, labels = [], []
    for label, motif in motifs.items():
        for _ in range(40):
            s = "".join(rng.choice(list("ACGT"), 40))
            pos = int(rng.integers(0, 34))
            seqs.append(s[:pos] + motif + s[pos + 6 :])
            labels.append(label)
    model = fit_kmer_model(seqs[::2], labels[::2], "multiclass", k=(4, 6))
    assert accuracy(labels[1::2], model.predict(seqs[1::2])) > 0.6  # chance is 1/3
    assert model.predict_proba(seqs[:2]).shape == (2, 3)
    with pytest.raises(ValueError, match="no k-mer baseline"):
        kmer_baseline(seqs, labels, seqs, "ranking")


def _motif_data(n: int, seed: int, noise: float) -> tuple[list[str], list[int]]:
    """Binary sequences: class 1 carries TATAAA, class 0 does not; a `noise` share of labels flipped."""
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    for i in range(n):
        y = i % 2
        s = "".join(rng.choice(list("ACGT"), 40))
        if y:
            pos = int(rng.integers(0, 34))
            s = s[:pos] + "TATAAA" + s[pos + 6 :]
        seqs.append(s)
        labels.append(y if rng.random() >= noise else 1 - y)
    return seqs, labels


def test_kmer_strength_is_chosen_by_the_validation_score() -> None:
    seqs, y = _motif_data(200, 0, noise=0.1)
    vseqs, vy = _motif_data(100, 1, noise=0.0)
    seen: list[float] = []

    def score(model) -> float:
        seen.append(model.named_steps["model"].C)
        return mcc(vy, model.predict(vseqs))

    fit = fit_kmer_selected(seqs, y, "binary", score, k=(4, 6))
    assert seen == list(SELECT_GRID["binary"]) and list(fit.valid_scores) == seen
    best = max(fit.valid_scores, key=fit.valid_scores.get)
    assert fit.strength == best == fit.model.named_steps["model"].C
    assert fit.valid_score == fit.valid_scores[best] > 0.3
    # the score decides, not the training fit: a score that favours the weakest C picks it
    weakest = fit_kmer_selected(seqs, y, "binary", lambda m: -m.named_steps["model"].C, k=4)
    assert weakest.strength == min(SELECT_GRID["binary"])
    ridge = fit_kmer_selected(seqs, [float(v) for v in y], "regression", lambda m: m.named_steps["model"].alpha, k=3,
                              grid=(1.0, 5.0))  # fmt: skip
    assert ridge.strength == 5.0 and set(ridge.describe()) >= {"kmer_strength", "kmer_valid_scores"}


def test_pairs_get_one_kmer_block_per_sequence() -> None:
    feats = input_kmer_features(2, 1).fit([("AAC", "GGT"), ("CA", "TT")])
    x = feats.transform([("AAC", "GGT")]).toarray()[0]
    # position 1 saw A, C and position 2 saw G, T: two blocks of 1-mer frequencies, each summing to 1
    assert x == pytest.approx([2 / 3, 1 / 3, 2 / 3, 1 / 3])
    model = fit_kmer_model([("AAAA", "CCCC"), ("CCCC", "AAAA")] * 10, [1, 0] * 10, "binary", k=1)
    assert list(model.predict([("AAAA", "CCCC"), ("CCCC", "AAAA")])) == [1, 0]  # only the order tells them apart


@pytest.mark.integration
@pytest.mark.skipif(not DATA.is_dir(), reason="shared data not present")
def test_task_kmer_fit_scores_the_validation_split_with_the_primary_metric() -> None:
    train, valid = sample_examples("enhancers", "train", 400), sample_examples("enhancers", "valid", None)
    fit = fit_task_kmer("enhancers", train, valid)
    assert primary_score("enhancers", valid, kmer_output("enhancers", fit.model, valid)) == pytest.approx(
        fit.valid_score
    )
    assert fit.valid_score == max(fit.valid_scores.values())
