"""Bootstrap intervals by hand, and the test question's independence from the class."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import matthews_corrcoef

from conftest import SHARED_DATA
from seqchat.data.sampling import sample_examples
from seqchat.evaluation.intervals import (
    Estimate,
    class_estimate,
    excludes_zero,
    mcc_from_labels,
    mean_estimate,
    numeric_estimate,
    paired_difference,
    percentile_interval,
    resample_indices,
)
from seqchat.tasks.predict import question_indices
from seqchat.tasks.registry import get_task
from seqchat.tasks.templates import question_templates


def test_percentile_interval_on_known_replicates() -> None:
    # 1001 evenly spaced replicates 0.000 .. 1.000: the 2.5% and 97.5% quantiles are 0.025 and 0.975
    assert percentile_interval(np.linspace(0, 1, 1001)) == pytest.approx((0.025, 0.975))
    assert percentile_interval(np.array([np.nan, 2.0, 2.0])) == (2.0, 2.0)
    assert excludes_zero((0.1, 0.3)) and excludes_zero((-0.3, -0.1)) and not excludes_zero((-0.1, 0.2))


def test_mcc_from_labels_matches_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    for k in (2, 3, 5):
        y, p = rng.integers(0, k, 50), rng.integers(0, k, 50)
        assert mcc_from_labels(y, p, k) == pytest.approx(matthews_corrcoef(y, p))
    assert mcc_from_labels(np.array([0, 1, 1]), np.array([1, 1, 1]), 2) == 0.0  # one predicted class: 0, as sklearn


def test_class_interval_by_hand() -> None:
    y = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    p = [1, 1, 1, 1, 0, 0, 0, 0, 0, 1]
    est = class_estimate("hand", y, p, 2)
    # 4 TP, 1 FN, 4 TN, 1 FP: MCC (16 - 1) / sqrt(5 * 5 * 5 * 5) = 0.6
    assert est.value == pytest.approx(0.6) and est.n == 10
    # the same resamples, scored one by one with scikit-learn, give the same interval
    idx = resample_indices("hand", 10)
    naive = [matthews_corrcoef(np.array(y)[i], np.array(p)[i]) for i in idx]
    assert est.ci95 == pytest.approx(tuple(np.quantile(naive, [0.025, 0.975])))
    lo, hi = est.ci95
    assert lo < 0.6 < hi
    # a perfect and a constant predictor have no spread
    assert class_estimate("hand", y, y, 2).ci95 == (1.0, 1.0)
    assert class_estimate("hand", y, [0] * 10, 2).ci95 == (0.0, 0.0)


def test_regression_interval_and_constant_prediction() -> None:
    y = np.arange(20, dtype=float)
    est = numeric_estimate("reg", "spearman", y, y[::-1])
    assert est.value == pytest.approx(-1.0) and est.ci95 == pytest.approx((-1.0, -1.0))
    assert numeric_estimate("reg", "pearson", y, np.ones(20)).value == 0.0  # no information, not nan


def test_means_and_paired_differences_use_the_same_resamples() -> None:
    a = {"t1": Estimate(0.5, np.array([0.4, 0.5, 0.6]), 3), "t2": Estimate(0.3, np.array([0.2, 0.3, 0.4]), 3)}
    b = {"t1": Estimate(0.1, np.array([0.1, 0.1, 0.1]), 3), "t3": Estimate(0.9, np.array([0.9, 0.9, 0.9]), 3)}
    m = mean_estimate(list(a.values()))
    assert m.value == pytest.approx(0.4) and m.replicates == pytest.approx([0.3, 0.4, 0.5]) and m.n == 2
    d = paired_difference(a, b)  # only t1 is shared: 0.5 - 0.1, replicates 0.3 0.4 0.5
    assert d.n == 1 and d.value == pytest.approx(0.4) and d.replicates == pytest.approx([0.3, 0.4, 0.5])
    # the resamples depend on task, n and seed only, so two systems on the same examples are paired
    assert (resample_indices("x", 7) == resample_indices("x", 7)).all()
    assert not (resample_indices("x", 7) == resample_indices("y", 7)).all()


@pytest.mark.integration
@pytest.mark.skipif(not SHARED_DATA, reason="needs ../shared/data")
@pytest.mark.parametrize("task", ["promoter_300_all", "yeast_h3", "splice_sites_human"])
def test_test_question_is_independent_of_class_and_position(task: str) -> None:
    ex = sample_examples(task, "test", 300, 0)
    q = question_indices(task, [e.residues for e in ex], [e.meta for e in ex])
    n_templates = len(question_templates(get_task(task), "test"))
    assert set(q) == set(range(n_templates))  # every held-out phrasing is used
    classes = sorted({e.target for e in ex}, key=str)
    table = np.array([[sum(1 for qi, e in zip(q, ex, strict=True) if qi == t and e.target == c) for c in classes]
                      for t in range(n_templates)])  # fmt: skip
    # chi-square test of independence between template and class: no evidence of dependence
    assert stats.chi2_contingency(table).pvalue > 0.001
    # the question follows the sequence, not its position: reversing the order reverses the questions
    rev = question_indices(task, [e.residues for e in ex[::-1]], [e.meta for e in ex[::-1]])
    assert rev == q[::-1]
    # the old rule (template i mod n on the split's order) is what this replaced: position decided the question
    assert q != [i % n_templates for i in range(len(ex))]
