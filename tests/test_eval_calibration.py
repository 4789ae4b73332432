"""ChatNT perplexity-based probabilities, Platt scaling, ECE and the reliability plot."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seqchat.evaluation.reliability import (
    N_BINS,
    calibrate,
    expected_calibration_error,
    plot_reliability,
    reliability_diagram,
)
from seqchat.tasks.calibration import PlattCalibrator, class_logits, positive_probability

POSITIVE = np.array([True, True, False, False])
# candidate geometric-mean token probabilities 0.5, 0.3 (positive answers) and 0.2, 0.4 (negative)
LOGLIK = np.log([[0.5, 0.3, 0.2, 0.4]])


def test_class_logits_average_each_class_then_softmax() -> None:
    # inverse perplexity: class logits mean(0.5, 0.3) = 0.4 and mean(0.2, 0.4) = 0.3 -> P = 1 / (1 + e^-0.1)
    assert class_logits(LOGLIK, POSITIVE) == pytest.approx(np.array([[0.4, 0.3]]))
    assert positive_probability(class_logits(LOGLIK, POSITIVE))[0] == pytest.approx(1 / (1 + math.exp(-0.1)))
    # the same scores given as perplexities 1/p
    as_ppl = class_logits(np.exp(-LOGLIK), POSITIVE, score_kind="perplexity")
    assert positive_probability(as_ppl)[0] == pytest.approx(1 / (1 + math.exp(-0.1)))
    # mean log-likelihood logits: softmax of ln sqrt(0.15) and ln sqrt(0.08)
    expected = math.sqrt(0.15) / (math.sqrt(0.15) + math.sqrt(0.08))
    assert positive_probability(class_logits(LOGLIK, POSITIVE, candidate_logit="mean_loglik"))[
        0
    ] == pytest.approx(expected)


def test_class_logits_reject_bad_shapes() -> None:
    with pytest.raises(ValueError, match="candidate mask"):
        class_logits(np.zeros((2, 3)), POSITIVE)
    with pytest.raises(ValueError, match="one positive and one negative"):
        class_logits(np.zeros((2, 2)), [True, True])


def test_ece_and_reliability_bins_by_hand() -> None:
    y = [0, 1, 1, 1, 1]
    p = [0.05, 0.15, 0.95, 0.95, 1.0]
    # bin 0: |0 - 0.05|, bin 1: |1 - 0.15|, bin 9 (1.0 included): |1 - 0.9667| over 3 -> (0.05 + 0.85 + 0.1) / 5
    assert expected_calibration_error(y, p) == pytest.approx((0.05 + 0.85 + 3 * (1 - 2.9 / 3)) / 5)
    diag = reliability_diagram(y, p)
    assert len(diag.counts) == N_BINS == 10
    assert diag.counts.tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0, 3]
    assert np.isnan(diag.mean_predicted[4])
    assert diag.fraction_positive[9] == 1.0


POSITIVE6 = np.array([True, True, True, False, False, False])


def _synthetic(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Mean log-likelihoods of 3 positive and 3 negative answers; the true class's answers score higher."""
    y = rng.integers(0, 2, n)
    sign = np.where(POSITIVE6, 1.0, -1.0) * np.where(y[:, None] == 1, 1.0, -1.0)
    return rng.normal(-1.2, 0.2, (n, 1)) + 0.25 * sign + rng.normal(0, 0.4, (n, 6)), y


@pytest.mark.parametrize(
    ("features", "candidate_logit"), [("logits", "inverse_perplexity"), ("probability", "mean_loglik")]
)
def test_platt_improves_ece_of_underconfident_scores(features: str, candidate_logit: str) -> None:
    rng = np.random.default_rng(0)
    train, train_y = _synthetic(2000, rng)
    test, test_y = _synthetic(1000, rng)
    res = calibrate(
        train, train_y, test, test_y, POSITIVE6, features=features, candidate_logit=candidate_logit
    )
    m = res.metrics
    # the raw probabilities huddle around 0.5 although the classes separate well: badly calibrated
    assert m["auroc_raw"] > 0.9 and m["ece_raw"] > 0.2
    assert m["ece_calibrated"] < m["ece_raw"] - 0.05
    # Platt scaling is monotone in the raw score here, so the ranking (AUROC) is kept
    assert m["auroc_calibrated"] == pytest.approx(m["auroc_raw"], abs=0.01)
    assert m["mcc_calibrated"] > 0.5 and m["n_bins"] == 10
    assert res.calibrated.counts.sum() == 1000


def test_platt_uses_chatnt_settings_and_requires_fit() -> None:
    cal = PlattCalibrator()
    with pytest.raises(RuntimeError, match="fit"):
        cal.predict_proba(np.zeros((1, 2)))
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(200, 2))
    y = (logits[:, 0] > logits[:, 1]).astype(int)
    cal.fit(logits, y)
    assert cal.model is not None and cal.model.C == 0.1 and cal.model.solver == "lbfgs"
    prob = cal.predict_proba(logits)
    assert prob.shape == (200,) and np.all((prob > 0) & (prob < 1))


def test_reliability_plot_is_written(tmp_path) -> None:
    rng = np.random.default_rng(2)
    train, train_y = _synthetic(300, rng)
    test, test_y = _synthetic(200, rng)
    res = calibrate(train, train_y, test, test_y, POSITIVE6)
    out = plot_reliability(res, tmp_path / "plots" / "reliability.png", title="synthetic")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_platt_is_scale_invariant_so_tiny_logit_differences_still_rank():
    """Candidate logits that differ by hundredths but rank the examples perfectly are not flattened to one value."""
    from seqchat.tasks.predict import calibrator_from_dict, calibrator_to_dict

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    margin = 0.01 * (2 * y - 1) + 0.002 * rng.standard_normal(200)
    logits = np.stack([-margin / 2, margin / 2], axis=1) - 3.0
    cal = PlattCalibrator().fit(logits, y)
    p = cal.predict_proba(logits)
    assert p[y == 1].min() > 0.5 > p[y == 0].max()
    again = calibrator_from_dict(calibrator_to_dict(cal))
    assert np.allclose(again.predict_proba(logits), p)
    # a file written before standardisation (no mean/scale) still loads and acts on the raw features
    old = {k: v for k, v in calibrator_to_dict(cal).items() if k not in ("mean", "scale")}
    assert calibrator_from_dict(old).mean is None
