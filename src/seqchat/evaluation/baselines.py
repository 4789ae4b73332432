"""Sequence-only baselines: k-mer frequency features with a linear model (scikit-learn).

`kmer_baseline(train_seqs, train_y, test_seqs, task_type)` fits on a task's training split and
predicts its test split, so any task's numbers can be set beside a trivial but honest
reference. Features are the frequencies of every k-mer seen in training, one block per k
(counts divided by the number of k-mers in the sequence), scaled to [-1, 1] per feature; the
L2 strength of the logistic or ridge regression is picked by cross-validation on the training
split.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
from sklearn.preprocessing import MaxAbsScaler, Normalizer

DEFAULT_K: tuple[int, ...] = (3, 4, 5, 6)

# the regularisation strength is chosen by 3-fold cross-validation on the training split only
_C_GRID = {"C": [0.01, 0.1, 1.0]}
_ALPHAS = (0.1, 1.0, 10.0, 100.0)


def _logistic() -> BaseEstimator:
    return GridSearchCV(LogisticRegression(max_iter=2000), _C_GRID, cv=3)


# a fresh, unfitted estimator for each task type
ESTIMATORS: dict[str, Callable[[], BaseEstimator]] = {
    "binary": _logistic,
    "multiclass": _logistic,
    "regression": lambda: RidgeCV(alphas=_ALPHAS),
}


def kmer_features(k: int | Sequence[int] = DEFAULT_K) -> FeatureUnion:
    """An unfitted transformer from sequences to per-k k-mer frequency blocks."""
    ks = (k,) if isinstance(k, int) else tuple(k)
    if not ks or min(ks) < 1:
        raise ValueError(f"k must be positive, got {k}")
    return FeatureUnion(
        [
            (
                f"k{kk}",
                make_pipeline(
                    # character n-grams of an upper-cased sequence are exactly its overlapping k-mers
                    CountVectorizer(analyzer="char", ngram_range=(kk, kk), lowercase=False, dtype=np.float32),
                    Normalizer(norm="l1"),
                ),
            )
            for kk in ks
        ]
    )


def fit_kmer_model(
    train_seqs: Sequence[str], train_y: Sequence, task_type: str, k: int | Sequence[int] = DEFAULT_K
) -> Pipeline:
    """Fit k-mer features + logistic regression (binary, multiclass) or ridge regression (regression)."""
    if task_type not in ESTIMATORS:
        raise ValueError(f"no k-mer baseline for task type '{task_type}': use one of {', '.join(ESTIMATORS)}")
    model = Pipeline(
        [("kmers", kmer_features(k)), ("scale", MaxAbsScaler()), ("model", ESTIMATORS[task_type]())]
    )
    model.fit([s.upper() for s in train_seqs], np.asarray(train_y))
    return model


def kmer_baseline(
    train_seqs: Sequence[str],
    train_y: Sequence,
    test_seqs: Sequence[str],
    task_type: str,
    k: int | Sequence[int] = DEFAULT_K,
) -> np.ndarray:
    """Fit on the training split and return test predictions (labels, or values for regression)."""
    model = fit_kmer_model(train_seqs, train_y, task_type, k)
    return model.predict([s.upper() for s in test_seqs])
