"""k-mer frequency baseline: real promoter data beats chance; regression and multi-class paths run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqchat.evaluation.baselines import fit_kmer_model, kmer_baseline, kmer_features
from seqchat.evaluation.metrics import accuracy, mcc, pearson

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
