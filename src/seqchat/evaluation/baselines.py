"""Sequence-only baselines: k-mer frequency features with a linear model (scikit-learn).

`kmer_baseline(train_seqs, train_y, test_seqs, task_type)` fits on a task's training split and
predicts its test split, so any task's numbers can be set beside a trivial but honest
reference. Features are the frequencies of every k-mer seen in training, one block per k
(counts divided by the number of k-mers in the sequence), scaled to [-1, 1] per feature; the
L2 strength of the logistic or ridge regression is picked by cross-validation on the training
split (`fit_kmer_model`) or, when a task has a validation split, by the score on it
(`fit_kmer_selected`: one fit per strength, cheaper than cross-validation on 47k sequences).
An example with several input sequences (a pair) is a tuple of strings: each position gets its own
k-mer block and the blocks are concatenated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression, Ridge, RidgeCV
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, MaxAbsScaler, Normalizer

DEFAULT_K: tuple[int, ...] = (3, 4, 5, 6)

# the regularisation strength is chosen by 3-fold cross-validation on the training split only
_C_GRID = {"C": [0.01, 0.1, 1.0]}
_ALPHAS = (0.1, 1.0, 10.0, 100.0)
# the strengths `fit_kmer_selected` tries, one fit each, kept by the validation score
SELECT_GRID: dict[str, tuple[float, ...]] = {
    "binary": (0.001, 0.01, 0.1, 1.0, 10.0),
    "multiclass": (0.001, 0.01, 0.1, 1.0, 10.0),
    "regression": (0.1, 1.0, 10.0, 100.0, 1000.0),
}


def _logistic() -> BaseEstimator:
    return GridSearchCV(LogisticRegression(max_iter=2000), _C_GRID, cv=3)


def _strength_estimator(task_type: str, strength: float) -> BaseEstimator:
    if task_type == "regression":
        return Ridge(alpha=strength)
    return LogisticRegression(C=strength, max_iter=2000)


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


def _position(i: int, rows: Sequence[tuple[str, ...]]) -> list[str]:
    return [r[i] for r in rows]


def input_kmer_features(n_inputs: int, k: int | Sequence[int] = DEFAULT_K) -> BaseEstimator:
    """k-mer blocks for examples of n_inputs sequences: plain strings for one, tuples of strings for several."""
    if n_inputs == 1:
        return kmer_features(k)
    return FeatureUnion([(f"in{i}", make_pipeline(FunctionTransformer(partial(_position, i)), kmer_features(k)))
                         for i in range(n_inputs)])  # fmt: skip


def upper(seqs: Sequence[str | tuple[str, ...]]) -> list[Any]:
    """Sequences (or tuples of sequences) in upper case, as the k-mer features expect them."""
    return [s.upper() if isinstance(s, str) else tuple(x.upper() for x in s) for s in seqs]


def _n_inputs(seqs: Sequence[str | tuple[str, ...]]) -> int:
    return 1 if isinstance(seqs[0], str) else len(seqs[0])


def _check_type(task_type: str) -> None:
    if task_type not in ESTIMATORS:
        raise ValueError(f"no k-mer baseline for task type '{task_type}': use one of {', '.join(ESTIMATORS)}")


def fit_kmer_model(
    train_seqs: Sequence[str], train_y: Sequence, task_type: str, k: int | Sequence[int] = DEFAULT_K
) -> Pipeline:
    """Fit k-mer features + logistic regression (binary, multiclass) or ridge regression (regression)."""
    _check_type(task_type)
    model = Pipeline(
        [("kmers", input_kmer_features(_n_inputs(train_seqs), k)), ("scale", MaxAbsScaler()),
         ("model", ESTIMATORS[task_type]())]
    )  # fmt: skip
    model.fit(upper(train_seqs), np.asarray(train_y))
    return model


@dataclass
class KmerFit:
    """A k-mer model whose regularisation strength was chosen on a validation split, and how it was chosen."""

    model: Pipeline
    strength: float  # C of the logistic regression, alpha of the ridge regression
    valid_score: float
    valid_scores: dict[float, float] = field(default_factory=dict)
    seconds: float = 0.0

    def describe(self) -> dict[str, Any]:
        """What the selection did, for a task's metrics."""
        return {"kmer_strength": self.strength, "kmer_valid_score": self.valid_score,
                "kmer_valid_scores": {str(c): v for c, v in self.valid_scores.items()},
                "kmer_fit_seconds": round(self.seconds, 2)}  # fmt: skip


def fit_kmer_selected(
    train_seqs: Sequence[str | tuple[str, ...]],
    train_y: Sequence,
    task_type: str,
    score: Callable[[Pipeline], float],
    k: int | Sequence[int] = DEFAULT_K,
    grid: Sequence[float] | None = None,
) -> KmerFit:
    """Fit one model per strength of `grid` on the training split and keep the best by `score` (higher is better).

    `score(model)` rates a fitted pipeline on held-out data (the task's validation split); the features
    and their scaling are fitted once on the training split and shared by every strength.
    """
    _check_type(task_type)
    start = time.perf_counter()
    y = np.asarray(train_y)
    feats = Pipeline([("kmers", input_kmer_features(_n_inputs(train_seqs), k)), ("scale", MaxAbsScaler())])
    x = feats.fit_transform(upper(train_seqs))
    best: KmerFit | None = None
    scores: dict[float, float] = {}
    for strength in grid or SELECT_GRID[task_type]:
        est = _strength_estimator(task_type, strength).fit(x, y)
        model = Pipeline([*feats.steps, ("model", est)])
        scores[strength] = value = float(score(model))
        # a NaN score (one class in the validation sample) never wins over a number
        if best is None or (np.isnan(best.valid_score) and not np.isnan(value)) or value > best.valid_score:
            best = KmerFit(model, strength, value)
    assert best is not None
    best.valid_scores, best.seconds = scores, time.perf_counter() - start
    return best


def kmer_baseline(
    train_seqs: Sequence[str],
    train_y: Sequence,
    test_seqs: Sequence[str],
    task_type: str,
    k: int | Sequence[int] = DEFAULT_K,
) -> np.ndarray:
    """Fit on the training split and return test predictions (labels, or values for regression)."""
    model = fit_kmer_model(train_seqs, train_y, task_type, k)
    return model.predict(upper(test_seqs))
