"""Bootstrap 95% intervals for per-task metrics, their means over tasks, and paired differences of systems.

Each task's test examples are resampled with replacement B times; the resampled indices depend only on
the seed, the task and the number of examples, so two systems scored on the same examples (the benchmark
gives every system the same seeded subsample, in the same order) are resampled identically and their
difference is a paired one. A mean over tasks is bootstrapped by resampling every task at once and
averaging the per-task replicates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

BOOTSTRAP_SAMPLES = 1000
LEVEL = 0.95


def resample_indices(task_name: str, n: int, seed: int = 0, samples: int = BOOTSTRAP_SAMPLES) -> np.ndarray:
    """(samples, n) example indices drawn with replacement; the same for every system on the same task and n."""
    digest = hashlib.sha256(f"{seed}:{task_name}:{n}:bootstrap".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    return rng.integers(0, n, size=(samples, n))


def percentile_interval(replicates: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central `level` percentile interval of bootstrap replicates (nan replicates dropped)."""
    r = np.asarray(replicates, dtype=float)
    r = r[~np.isnan(r)]
    if r.size == 0:
        return float("nan"), float("nan")
    a = (1 - level) / 2
    return float(np.quantile(r, a)), float(np.quantile(r, 1 - a))


def mcc_from_labels(y: np.ndarray, p: np.ndarray, n_classes: int) -> float:
    """Matthews correlation (multi-class form, Gorodkin) from integer labels; 0 when undefined, as scikit-learn."""
    cm = np.bincount(y * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes).astype(float)
    s, c = cm.sum(), np.trace(cm)
    t, q = cm.sum(1), cm.sum(0)
    den = np.sqrt((s * s - q @ q) * (s * s - t @ t))
    return float((c * s - t @ q) / den) if den > 0 else 0.0


def _pearson(y: np.ndarray, p: np.ndarray) -> float:
    # a constant prediction carries no information: 0, as MCC does, rather than an undefined value a mean would skip
    if np.std(y) == 0 or np.std(p) == 0:
        return 0.0
    return float(np.corrcoef(y, p)[0, 1])


def _spearman(y: np.ndarray, p: np.ndarray) -> float:
    return _pearson(stats.rankdata(y), stats.rankdata(p))


# fast per-resample metrics on numeric arrays: (truth, prediction) -> value
NUMERIC_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {"pearson": _pearson, "spearman": _spearman}


@dataclass(frozen=True)
class Estimate:
    """A metric on the test examples, its bootstrap replicates and 95% interval."""

    value: float
    replicates: np.ndarray
    n: int

    @property
    def ci95(self) -> tuple[float, float]:
        """The 95% percentile interval."""
        return percentile_interval(self.replicates)


def class_estimate(
    task_name: str, truth: Sequence[int], pred: Sequence[int], n_classes: int, seed: int = 0
) -> Estimate:
    """MCC of integer class labels with its bootstrap replicates."""
    y, p = np.asarray(truth, dtype=int), np.asarray(pred, dtype=int)
    idx = resample_indices(task_name, len(y), seed)
    reps = np.array([mcc_from_labels(y[i], p[i], n_classes) for i in idx])
    return Estimate(mcc_from_labels(y, p, n_classes), reps, len(y))


def numeric_estimate(
    task_name: str, metric: str, truth: Sequence[float], pred: Sequence[float], seed: int = 0
) -> Estimate:
    """A regression metric (pearson / spearman) with its bootstrap replicates."""
    fn = NUMERIC_METRICS[metric]
    y, p = np.asarray(truth, dtype=float), np.asarray(pred, dtype=float)
    idx = resample_indices(task_name, len(y), seed)
    return Estimate(fn(y, p), np.array([fn(y[i], p[i]) for i in idx]), len(y))


def generic_estimate(
    task_name: str, n: int, value_of: Callable[[np.ndarray], float], seed: int = 0, samples: int = 200
) -> Estimate:
    """Any metric computed from a subset of example indices (slow metrics: fewer resamples)."""
    idx = resample_indices(task_name, n, seed, samples)
    return Estimate(value_of(np.arange(n)), np.array([value_of(i) for i in idx]), n)


def mean_estimate(estimates: Sequence[Estimate]) -> Estimate:
    """The mean over tasks, bootstrapped by resampling every task at once (replicates averaged per draw)."""
    if not estimates:
        return Estimate(float("nan"), np.full(1, np.nan), 0)
    b = min(e.replicates.size for e in estimates)
    reps = np.nanmean(np.stack([e.replicates[:b] for e in estimates]), axis=0)
    return Estimate(float(np.nanmean([e.value for e in estimates])), reps, len(estimates))


def paired_difference(a: Mapping[str, Estimate], b: Mapping[str, Estimate]) -> Estimate:
    """Mean over the tasks both systems ran of (a − b), with paired replicates (same resamples per task)."""
    both = [t for t in a if t in b and a[t].n == b[t].n]
    diffs = [Estimate(a[t].value - b[t].value, a[t].replicates - b[t].replicates, a[t].n) for t in both]
    return mean_estimate(diffs)


def excludes_zero(ci: tuple[float, float]) -> bool:
    """Whether an interval lies wholly on one side of zero."""
    lo, hi = ci
    return bool(lo > 0 or hi < 0)
