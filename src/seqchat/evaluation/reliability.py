"""Reliability diagrams, expected calibration error and the calibration experiment (ChatNT Fig. 6b-d).

The calibrator itself (`PlattCalibrator`, class logits from candidate scores) is runtime code in
`seqchat.tasks.calibration`; this module measures how well it calibrates.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqchat.evaluation.metrics import auroc, mcc
from seqchat.tasks.calibration import (
    PlattCalibrator,
    class_logits,
    positive_probability,
)

N_BINS = 10  # ChatNT's calibration plots use ten equal-width bins


@dataclass(frozen=True)
class ReliabilityDiagram:
    """Per equal-width bin: edges, example count, mean predicted P(positive) and observed fraction positive."""

    edges: np.ndarray
    counts: np.ndarray
    mean_predicted: np.ndarray  # nan for an empty bin
    fraction_positive: np.ndarray  # nan for an empty bin

    @property
    def ece(self) -> float:
        """Expected calibration error: the count-weighted mean gap between the two curves."""
        full = self.counts > 0
        gaps = np.abs(self.fraction_positive[full] - self.mean_predicted[full])
        return float(np.sum(self.counts[full] * gaps) / self.counts.sum())


def reliability_diagram(
    y_true: Sequence[int], prob: Sequence[float], n_bins: int = N_BINS
) -> ReliabilityDiagram:
    """Bin P(positive) into `n_bins` equal-width bins on [0, 1] (the last bin includes 1.0)."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(prob, dtype=float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    counts = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pred = np.bincount(which, weights=p, minlength=n_bins) / counts
        frac_pos = np.bincount(which, weights=y, minlength=n_bins) / counts
    return ReliabilityDiagram(edges, counts, mean_pred, frac_pos)


def expected_calibration_error(y_true: Sequence[int], prob: Sequence[float], n_bins: int = N_BINS) -> float:
    """ECE of P(positive) over `n_bins` equal-width bins (default 10)."""
    return reliability_diagram(y_true, prob, n_bins).ece


@dataclass(frozen=True)
class CalibrationResult:
    """Test-split probabilities and metrics before and after Platt scaling."""

    prob_raw: np.ndarray
    prob_calibrated: np.ndarray
    metrics: dict[str, float]
    raw: ReliabilityDiagram
    calibrated: ReliabilityDiagram
    calibrator: PlattCalibrator = field(repr=False)


def calibrate(
    train_scores: np.ndarray,
    train_y: Sequence[int],
    test_scores: np.ndarray,
    test_y: Sequence[int],
    positive: Sequence[bool],
    *,
    score_kind: str = "mean_loglik",
    candidate_logit: str = "inverse_perplexity",
    features: str = "logits",
    n_bins: int = N_BINS,
) -> CalibrationResult:
    """ChatNT's protocol: perplexity-based P(positive), Platt fit on train, AUROC / MCC / ECE on test before and
    after."""
    train_logits = class_logits(train_scores, positive, score_kind, candidate_logit)
    test_logits = class_logits(test_scores, positive, score_kind, candidate_logit)
    calibrator = PlattCalibrator(features=features).fit(train_logits, train_y)
    raw = positive_probability(test_logits)
    cal = calibrator.predict_proba(test_logits)
    y = np.asarray(test_y, dtype=int)
    raw_diag, cal_diag = reliability_diagram(y, raw, n_bins), reliability_diagram(y, cal, n_bins)
    return CalibrationResult(raw, cal, calibration_metrics(y, raw, cal, n_bins), raw_diag, cal_diag, calibrator)


def calibration_metrics(y: Sequence[int], raw: np.ndarray, cal: np.ndarray, n_bins: int = N_BINS) -> dict[str, float]:
    """AUROC, MCC at 0.5 and ECE of raw and calibrated P(positive) against 0/1 labels."""
    y = np.asarray(y, dtype=int)
    return {
        "auroc_raw": auroc(y, raw),
        "auroc_calibrated": auroc(y, cal),
        "mcc_raw": mcc(y, (np.asarray(raw) >= 0.5).astype(int)),
        "mcc_calibrated": mcc(y, (np.asarray(cal) >= 0.5).astype(int)),
        "ece_raw": reliability_diagram(y, raw, n_bins).ece,
        "ece_calibrated": reliability_diagram(y, cal, n_bins).ece,
        "n_bins": n_bins,
    }


def plot_reliability(result: CalibrationResult, path: str | os.PathLike, title: str = "") -> Path:
    """Write a PNG like ChatNT Fig. 6b-d: reliability curves and probability histograms before/after Platt."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    ax = axes[0]
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfect calibration")
    for diag, name, color in (
        (result.raw, "original", "tab:orange"),
        (result.calibrated, "calibrated", "tab:purple"),
    ):
        full = diag.counts > 0
        ece = diag.ece
        ax.plot(
            diag.mean_predicted[full],
            diag.fraction_positive[full],
            "o-",
            c=color,
            label=f"{name} (ECE {ece:.3f})",
        )
    ax.set(xlabel="predicted probability", ylabel="fraction of positives", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=8)
    for ax, diag, name, color in (
        (axes[1], result.raw, "original", "tab:orange"),
        (axes[2], result.calibrated, "calibrated", "tab:purple"),
    ):
        ax.bar(
            diag.edges[:-1],
            diag.counts,
            width=np.diff(diag.edges),
            align="edge",
            color=color,
            edgecolor="white",
        )
        ax.set(
            xlabel="predicted probability",
            ylabel="examples",
            title=f"{name} ({len(diag.counts)} bins)",
            xlim=(0, 1),
        )
    m = result.metrics
    fig.suptitle(
        (
            f"{title}  AUROC {m['auroc_raw']:.3f} -> {m['auroc_calibrated']:.3f}, "
            f"MCC {m['mcc_raw']:.3f} -> {m['mcc_calibrated']:.3f}"
        ).strip()
    )
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
