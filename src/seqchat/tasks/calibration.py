"""ChatNT's perplexity-based confidence for binary tasks, Platt calibration and reliability diagrams.

Following ChatNT (Methods "Calibration" and its calibration pseudocode): for each question the
model scores N positive and N negative candidate answers; the per-class score is the mean over
that class's candidates of the candidate's perplexity-based score, the two class scores are read
as logits, and a softmax over them gives P(positive). A Platt model (scikit-learn logistic
regression, C=0.1, lbfgs) fitted on training-split examples (on the two class logits, as the
pseudocode does; `features="probability"` fits it on P(positive), as the Methods text reads)
gives calibrated probabilities on the test split.

The caller passes `scores` of shape (n_examples, n_candidates): each candidate's mean token
log-likelihood ℓ = (1/L) Σ_j log p(y_j | ...) as the model's `score` returns it (or its
perplexity exp(-ℓ) with `score_kind="perplexity"`), and a boolean mask of which candidates are
positive answers. ChatNT's per-candidate score exp(Σ_j p log p) is read as the length-normalised
exp(ℓ) = 1/perplexity, the geometric-mean token probability (`candidate_logit="inverse_perplexity"`,
the default); `candidate_logit="mean_loglik"` uses ℓ itself, which gives sharper probabilities.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from seqchat.evaluation.metrics import auroc, mcc

N_BINS = 10  # ChatNT's calibration plots use ten equal-width bins

# what the model's `score` returns -> mean token log-likelihood
SCORE_KINDS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean_loglik": lambda s: s,
    "perplexity": lambda s: -np.log(s),
}
# mean token log-likelihood of one candidate -> the value averaged per class and used as a logit
CANDIDATE_LOGITS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "inverse_perplexity": np.exp,
    "mean_loglik": lambda ll: ll,
}


def class_logits(
    scores: np.ndarray,
    positive: Sequence[bool],
    score_kind: str = "mean_loglik",
    candidate_logit: str = "inverse_perplexity",
) -> np.ndarray:
    """(n_examples, 2) logits [positive, negative]: each class's candidate scores averaged, as ChatNT does."""
    s = np.asarray(scores, dtype=float)
    pos = np.asarray(positive, dtype=bool)
    if s.ndim != 2 or s.shape[1] != pos.size:
        raise ValueError(
            f"scores must be (n_examples, {pos.size}) to match the candidate mask, got {s.shape}"
        )
    if not pos.any() or pos.all():
        raise ValueError("the candidates must include at least one positive and one negative answer")
    per_candidate = CANDIDATE_LOGITS[candidate_logit](SCORE_KINDS[score_kind](s))
    return np.stack([per_candidate[:, pos].mean(axis=1), per_candidate[:, ~pos].mean(axis=1)], axis=1)


def positive_probability(logits: np.ndarray) -> np.ndarray:
    """P(positive) per example: softmax over the (n, 2) class logits from `class_logits`, positive mass."""
    logits = np.asarray(logits, dtype=float)
    # softmax over two logits is the logistic function of their difference
    return 1.0 / (1.0 + np.exp(logits[:, 1] - logits[:, 0]))


# what the Platt model reads: ChatNT's calibration pseudocode fits it on the two class logits
# (the default); its Methods text speaks of mapping the probabilities, kept as an option
PLATT_FEATURES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "probability": lambda logits: positive_probability(logits)[:, None],
    "logits": lambda logits: logits,
}


@dataclass
class PlattCalibrator:
    """Platt scaling as in ChatNT: logistic regression (C=0.1, lbfgs) on perplexity-based features.

    Binary tasks: fitted on the two class logits, `predict_proba` gives P(positive). Multi-class tasks
    (features="logits" on the (n, C) class log-probabilities): a multinomial logistic regression
    (vector scaling), `predict_classes` gives the (n, C) calibrated class probabilities.
    """

    features: str = "logits"
    C: float = 0.1
    model: LogisticRegression | None = field(default=None, repr=False)
    # per-feature standardisation fitted with the model: without it C=0.1 flattens the slope whenever the
    # candidate logits differ by hundredths (a decoder steered by a few soft tokens), and every example
    # gets the same probability however well the logits rank the examples
    mean: np.ndarray | None = field(default=None, repr=False)
    scale: np.ndarray | None = field(default=None, repr=False)

    def _x(self, logits: np.ndarray) -> np.ndarray:
        x = PLATT_FEATURES[self.features](np.asarray(logits, dtype=float))
        if self.mean is None or self.scale is None:
            return x
        return (x - self.mean) / self.scale

    def fit(self, logits: np.ndarray, y: Sequence[int]) -> PlattCalibrator:
        """Fit on training-split class logits (n, C) and class indices (0/1 for binary tasks)."""
        x = PLATT_FEATURES[self.features](np.asarray(logits, dtype=float))
        self.mean = x.mean(0)
        scale = x.std(0)
        self.scale = np.where(scale > 1e-12, scale, 1.0)
        self.model = LogisticRegression(C=self.C, solver="lbfgs")
        self.model.fit(self._x(logits), np.asarray(y, dtype=int))
        return self

    def _fitted(self) -> LogisticRegression:
        if self.model is None:
            raise RuntimeError("fit the calibrator on training examples first")
        return self.model

    def predict_proba(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated P(positive) for class logits (n, 2)."""
        return self._fitted().predict_proba(self._x(logits))[:, 1]

    def predict_classes(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated (n, C) class probabilities; a class absent from the fitting sample gets 0."""
        x = np.asarray(logits, dtype=float)
        model = self._fitted()
        out = np.zeros((x.shape[0], max(x.shape[1], int(model.classes_.max()) + 1)))
        out[:, model.classes_.astype(int)] = model.predict_proba(self._x(x))
        return out


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
    """ChatNT's protocol: perplexity-based P(positive), Platt fit on train, AUROC / MCC / ECE on test before and after."""
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
        f"{title}  AUROC {m['auroc_raw']:.3f} -> {m['auroc_calibrated']:.3f}, MCC {m['mcc_raw']:.3f} -> {m['mcc_calibrated']:.3f}".strip()
    )
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
