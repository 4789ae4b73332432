"""ChatNT's perplexity-based confidence for binary tasks and Platt calibration (measured in
`seqchat.evaluation.reliability`).

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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression

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
