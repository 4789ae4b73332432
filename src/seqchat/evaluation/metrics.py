"""Task metrics from scikit-learn, SciPy, NLTK and rouge-score, and one helper that scores a task.

`METRICS` maps a name to a function `f(y_true, y_pred) -> float`; `EMBEDDING_METRICS` maps a
name to `f(embeddings, ec_numbers) -> float | dict`. `evaluate_predictions` turns parsed answers
(None where an answer could not be read) and truths into a task's metrics, counting every
unparsed answer as wrong:

- binary: the unparsed answer becomes the label opposite to the truth;
- multi-class: it becomes an extra "unparsed" class that matches no truth;
- multi-label: every label decision is flipped (the complement of the true set);
- EC numbers: it counts as a four-level prediction with no level right;
- regression: it is replaced by `fill_value` (pass the training-split mean of the target); without
  one, by the mean of the answers that were parsed, and the result says which rule was used;
- free text: it is scored as an empty answer.
The result always carries `n` and `n_unparsed`.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from sklearn import metrics as skm
from sklearn.neighbors import NearestNeighbors

from seqchat.evaluation import wordnet as wn
from seqchat.tasks.parsing import AnswerSpec, normalize_ec, parse_answer

# ---------------------------------------------------------------------------------------------
# Classification
# ---------------------------------------------------------------------------------------------


def accuracy(y_true: Sequence, y_pred: Sequence) -> float:
    """Fraction of exact matches (subset accuracy for multi-hot rows)."""
    return float(skm.accuracy_score(y_true, y_pred))


def mcc(y_true: Sequence, y_pred: Sequence) -> float:
    """Matthews correlation coefficient (the multi-class R_K form for more than two classes)."""
    return float(skm.matthews_corrcoef(y_true, y_pred))


def f1_binary(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """F1 of the positive class (label 1)."""
    return float(skm.f1_score(y_true, y_pred, pos_label=1, average="binary", zero_division=0))


def f1_macro(y_true: Sequence, y_pred: Sequence) -> float:
    """Unweighted mean of per-class F1 over the classes present in the truth."""
    # averaging over true classes only keeps an "unparsed" prediction class from adding a zero
    return float(skm.f1_score(y_true, y_pred, labels=np.unique(y_true), average="macro", zero_division=0))


def auroc(y_true: Sequence, y_score: Sequence) -> float:
    """Area under the ROC curve; for multi-hot truth, the mean over labels that have both classes."""
    t, s = np.asarray(y_true), np.asarray(y_score, dtype=float)
    if t.ndim == 1:
        return float(skm.roc_auc_score(t, s))
    keep = [j for j in range(t.shape[1]) if 0 < t[:, j].sum() < t.shape[0]]
    if not keep:
        return float("nan")
    return float(np.mean([skm.roc_auc_score(t[:, j], s[:, j]) for j in keep]))


def fmax(y_true: Sequence, y_score: Sequence, thresholds: Iterable[float] | None = None) -> float:
    """CAFA protein-centric Fmax: the best F over thresholds t of P(t) and R(t) averaged over proteins.

    P(t) averages precision over the proteins with at least one score >= t; R(t) averages recall
    over all proteins with at least one true label (Radivojac et al. 2013, thresholds 0.01..1.00).
    """
    t_true = np.asarray(y_true, dtype=bool)
    s = np.asarray(y_score, dtype=float)
    has_truth = t_true.any(axis=1)
    t_true, s = t_true[has_truth], s[has_truth]
    best = 0.0
    for t in np.linspace(0.01, 1.0, 100) if thresholds is None else thresholds:
        pred = s >= t
        n_pred = pred.sum(axis=1)
        covered = n_pred > 0
        if not covered.any():
            continue
        tp = (pred & t_true).sum(axis=1)
        precision = float(np.mean(tp[covered] / n_pred[covered]))
        recall = float(np.mean(tp / t_true.sum(axis=1)))
        if precision + recall > 0:
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


# ---------------------------------------------------------------------------------------------
# Regression (several outputs: the mean over outputs)
# ---------------------------------------------------------------------------------------------


def _columns(y_true: Sequence, y_pred: Sequence) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    return t.reshape(len(t), -1), p.reshape(len(p), -1)


def _per_output(fn: Callable[[np.ndarray, np.ndarray], float], y_true: Sequence, y_pred: Sequence) -> float:
    t, p = _columns(y_true, y_pred)
    with warnings.catch_warnings():
        # a constant column (every answer unparsed and filled) has no correlation: nan, said once
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        return float(np.mean([fn(t[:, j], p[:, j]) for j in range(t.shape[1])]))


def pearson(y_true: Sequence, y_pred: Sequence) -> float:
    """Pearson correlation (mean over outputs)."""
    return _per_output(lambda t, p: stats.pearsonr(t, p).statistic, y_true, y_pred)


def spearman(y_true: Sequence, y_pred: Sequence) -> float:
    """Spearman rank correlation (mean over outputs)."""
    return _per_output(lambda t, p: stats.spearmanr(t, p).statistic, y_true, y_pred)


def r2(y_true: Sequence, y_pred: Sequence) -> float:
    """Coefficient of determination 1 - SS_res/SS_tot (ChatNT's R²; mean over outputs)."""
    t, p = _columns(y_true, y_pred)
    return float(skm.r2_score(t, p, multioutput="uniform_average"))


def r2_pearson(y_true: Sequence, y_pred: Sequence) -> float:
    """Squared Pearson correlation (Biology-Instructions' "R²"; mean over outputs)."""
    return _per_output(lambda t, p: stats.pearsonr(t, p).statistic ** 2, y_true, y_pred)


# ---------------------------------------------------------------------------------------------
# EC numbers: hierarchical precision / recall / F (HiClass definition, as BioTalk uses)
# ---------------------------------------------------------------------------------------------

EC_LEVELS = 4


def ec_ancestors(ec: str) -> frozenset[str]:
    """The EC number's known levels as prefixes: "1.2.3.-" -> {"1", "1.2", "1.2.3"}."""
    parts = re.sub(r"^\s*EC[\s:]*", "", ec.strip(), flags=re.IGNORECASE).split(".")
    out = []
    for i, part in enumerate(parts[:EC_LEVELS]):
        if part in ("", "-"):
            break
        out.append(".".join(parts[: i + 1]))
    return frozenset(out)


def _ec_set(value: str | Iterable[str] | None) -> frozenset[str] | None:
    """All ancestors of one example's EC number(s); a string may hold several separated by ';' or ','."""
    if value is None:
        return None
    ecs = re.split(r"[;,\s]+", value.strip()) if isinstance(value, str) else list(value)
    return frozenset().union(*(ec_ancestors(e) for e in ecs if e))


def hierarchical_prf(y_true: Sequence, y_pred: Sequence) -> dict[str, float]:
    """Micro-averaged hierarchical precision, recall and F over EC levels (Kiritchenko et al.; HiClass).

    hP = sum_i |P_i & T_i| / sum_i |P_i|, hR = sum_i |P_i & T_i| / sum_i |T_i|, where P_i and T_i
    are the predicted and true EC numbers of example i together with all their ancestors
    ("1", "1.1", "1.1.1", "1.1.1.1"). An unparsed prediction (None) counts as a four-level
    prediction with no level right, so it lowers precision as well as recall. (BioTalk's Table 4 has
    hR = hP/4 to four digits, which this definition gives only when every prediction holds
    one level against four true ones; we do not reproduce that.)
    """
    inter = n_pred = n_true = 0
    for truth, pred in zip(y_true, y_pred, strict=True):
        t = _ec_set(truth) or frozenset()
        p = _ec_set(pred)
        n_true += len(t)
        if p is None:
            n_pred += EC_LEVELS
            continue
        inter += len(p & t)
        n_pred += len(p)
    hp = inter / n_pred if n_pred else 0.0
    hr = inter / n_true if n_true else 0.0
    hf = 2 * hp * hr / (hp + hr) if hp + hr else 0.0
    return {"hprecision": hp, "hrecall": hr, "hf1": hf}


def ec_exact_match(y_true: Sequence, y_pred: Sequence) -> float:
    """Fraction of examples whose predicted set of EC numbers equals the true set at all four levels."""
    hits = [
        pred is not None and _ec_leaves(pred) == _ec_leaves(truth)
        for truth, pred in zip(y_true, y_pred, strict=True)
    ]
    return float(np.mean(hits)) if hits else float("nan")


def _ec_leaves(value: str | Iterable[str]) -> frozenset[str]:
    ecs = re.split(r"[;,\s]+", value.strip()) if isinstance(value, str) else list(value)
    return frozenset(normalize_ec(e) for e in ecs if e)


# ---------------------------------------------------------------------------------------------
# Embeddings by EC class (BioTalk Tables 2 and 3)
# ---------------------------------------------------------------------------------------------


def knn_hierarchical_precision(
    embeddings: np.ndarray,
    ec_numbers: Sequence,
    ks: Sequence[int] = (1, 3, 5),
    reference_embeddings: np.ndarray | None = None,
    reference_ec_numbers: Sequence | None = None,
    metric: str = "cosine",
) -> dict[int, float]:
    """BioTalk's top-k retrieval score: hierarchical precision of the best-matching of the k nearest neighbours.

    Each query retrieves its k nearest reference embeddings; the neighbour sharing the most EC
    levels with the query is scored, and hP = sum of shared levels / sum of that neighbour's
    levels (with full four-level EC numbers hP = hR = hF, as the paper notes). Without a
    reference set, retrieval is leave-one-out within `embeddings`. The paper does not name its
    distance; cosine is the default here.
    """
    queries = [_ec_set(e) or frozenset() for e in ec_numbers]
    leave_one_out = reference_embeddings is None
    ref_x = np.asarray(embeddings if leave_one_out else reference_embeddings, dtype=float)
    refs = queries if leave_one_out else [_ec_set(e) or frozenset() for e in reference_ec_numbers or ()]
    k_max = max(ks)
    nn = NearestNeighbors(n_neighbors=min(k_max + leave_one_out, len(ref_x)), metric=metric).fit(ref_x)
    _, idx = nn.kneighbors(np.asarray(embeddings, dtype=float))
    if leave_one_out:
        # drop the query itself wherever the tie-breaking put it
        idx = np.array([[j for j in row if j != i][:k_max] for i, row in enumerate(idx)])
    out = {}
    for k in ks:
        inter = denom = 0
        for q, row in zip(queries, idx, strict=True):
            best = max(row[:k], key=lambda j, q=q: (len(q & refs[j]), -len(refs[j])))
            inter += len(q & refs[best])
            denom += len(refs[best])
        out[k] = inter / denom if denom else 0.0
    return out


def silhouette_by_ec(
    embeddings: np.ndarray, ec_numbers: Sequence, level: int = EC_LEVELS, metric: str = "euclidean"
) -> float:
    """scikit-learn silhouette score of the embeddings grouped by EC number cut to `level` levels."""
    labels = []
    for e in ec_numbers:
        first = e if isinstance(e, str) else next(iter(e))
        first = re.split(r"[;,\s]+", first.strip())[0]
        labels.append(".".join(re.sub(r"^EC[\s:]*", "", first, flags=re.IGNORECASE).split(".")[:level]))
    return float(skm.silhouette_score(np.asarray(embeddings, dtype=float), labels, metric=metric))


# ---------------------------------------------------------------------------------------------
# Free text: BLEU-1..4, METEOR (GeneChat), ROUGE-L
# ---------------------------------------------------------------------------------------------

_WORD_RE = re.compile(r"\w+(?:[-']\w+)*|[^\w\s]")


def tokenize_text(text: str) -> list[str]:
    """Lower-cased words and punctuation marks, the tokens BLEU and METEOR compare."""
    return _WORD_RE.findall(text.lower())


def _references(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def bleu(references: Sequence, predictions: Sequence[str | None], n: int = 4, corpus: bool = False) -> float:
    """Cumulative BLEU-n with uniform weights 1/n and the brevity penalty (NLTK).

    GeneChat reports BLEU-1..4 without saying how they were aggregated; this is the mean of
    sentence-level scores with NLTK's smoothing method 1 (so one missing 4-gram does not zero a
    sentence), or `corpus=True` for corpus-level BLEU without smoothing.
    """
    from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu, sentence_bleu

    weights = (1.0 / n,) * n
    refs = [[tokenize_text(r) for r in _references(ref)] for ref in references]
    hyps = [tokenize_text(p or "") for p in predictions]
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} predictions")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NLTK warns on every sentence with no n-gram overlap
        if corpus:
            return float(corpus_bleu(refs, hyps, weights=weights))
        smooth = SmoothingFunction().method1
        return float(
            np.mean(
                [
                    sentence_bleu(r, h, weights=weights, smoothing_function=smooth)
                    for r, h in zip(refs, hyps, strict=True)
                ]
            )
        )


class _NoSynonyms:
    """Stands in for WordNet when none is installed: METEOR then matches exact words and stems only."""

    def synsets(self, word: str) -> list:
        return []


def meteor_uses_synonyms() -> bool:
    """Whether METEOR's WordNet synonym stage is available (else exact + stem matching only)."""
    return wn.load_wordnet() is not None


def meteor(references: Sequence, predictions: Sequence[str | None]) -> float:
    """Mean sentence METEOR (NLTK; alpha 0.9, beta 3, gamma 0.5, i.e. GeneChat's 10PR/(R+9P) with fragmentation
    penalty).

    Matching stages: exact, Porter stem, WordNet synonyms. Without WordNet the synonym stage is
    skipped with a warning; `meteor_uses_synonyms()` tells which ran. NLTK aligns a repeated word
    to its last occurrence in the reference, which can add a chunk where the original METEOR
    aligner would not.
    """
    from nltk.translate.meteor_score import meteor_score

    wordnet = wn.load_wordnet()  # looked up at call time (tests swap it out)
    if wordnet is None:
        warnings.warn("WordNet not installed: METEOR uses exact and stem matches only", stacklevel=2)
        wordnet = _NoSynonyms()
    scores = [
        meteor_score([tokenize_text(r) for r in _references(ref)], tokenize_text(pred or ""), wordnet=wordnet)
        for ref, pred in zip(references, predictions, strict=True)
    ]
    return float(np.mean(scores)) if scores else float("nan")


@functools.lru_cache(maxsize=1)
def _rouge_scorer():  # type: ignore[no-untyped-def]
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(references: Sequence, predictions: Sequence[str | None]) -> float:
    """Mean ROUGE-L F-measure (longest common subsequence; rouge-score, best over several references)."""
    scorer = _rouge_scorer()
    scores = [
        scorer.score_multi(_references(ref), pred or "")["rougeL"].fmeasure
        for ref, pred in zip(references, predictions, strict=True)
    ]
    return float(np.mean(scores)) if scores else float("nan")


# ---------------------------------------------------------------------------------------------
# Registries and the task helper
# ---------------------------------------------------------------------------------------------


def _hp(y_true: Sequence, y_pred: Sequence) -> float:
    return hierarchical_prf(y_true, y_pred)["hprecision"]


def _hr(y_true: Sequence, y_pred: Sequence) -> float:
    return hierarchical_prf(y_true, y_pred)["hrecall"]


def _hf(y_true: Sequence, y_pred: Sequence) -> float:
    return hierarchical_prf(y_true, y_pred)["hf1"]


METRICS: dict[str, Callable[[Any, Any], float]] = {
    "accuracy": accuracy,
    "mcc": mcc,
    "f1": f1_binary,
    "f1_macro": f1_macro,
    "auroc": auroc,
    "fmax": fmax,
    "subset_accuracy": accuracy,
    "pearson": pearson,
    "spearman": spearman,
    "r2": r2,
    "r2_pearson": r2_pearson,
    "ec_hprecision": _hp,
    "ec_hrecall": _hr,
    "ec_hf1": _hf,
    "ec_exact_match": ec_exact_match,
    "bleu1": functools.partial(bleu, n=1),
    "bleu2": functools.partial(bleu, n=2),
    "bleu3": functools.partial(bleu, n=3),
    "bleu4": functools.partial(bleu, n=4),
    "meteor": meteor,
    "rouge_l": rouge_l,
}

EMBEDDING_METRICS: dict[str, Callable[..., Any]] = {
    "knn_hprecision": knn_hierarchical_precision,
    "silhouette": silhouette_by_ec,
}


@dataclass(frozen=True)
class _Prepared:
    y_true: Any
    y_pred: Any
    info: dict[str, Any]


def _need_labels(labels: Sequence[str] | None, task_type: str) -> list[str]:
    if not labels:
        raise ValueError(f"task type '{task_type}' needs its label names (labels=...)")
    return list(labels)


def _prepare_binary(preds: list, truths: list, opts: Mapping[str, Any]) -> _Prepared:
    labels = _need_labels(opts.get("labels"), "binary")
    if len(labels) != 2:
        raise ValueError(f"a binary task has two labels, got {labels}")
    positive = opts.get("positive_label") or labels[0]
    # an unparsed answer becomes one fixed class that never looks at the truth (default: the negative label)
    fill = _check_label(opts.get("fill_label") or next(lab for lab in labels if lab != positive), labels)
    y_true = np.array([_check_label(t, labels) == positive for t in truths], dtype=int)
    y_pred = np.array([int((fill if p is None else p) == positive) for p in preds], dtype=int)
    return _Prepared(y_true, y_pred, {"positive_label": positive, "fill_label": fill})


def _prepare_multiclass(preds: list, truths: list, opts: Mapping[str, Any]) -> _Prepared:
    labels = _need_labels(opts.get("labels"), "multiclass")
    index = {lab: i for i, lab in enumerate(labels)}
    y_true = np.array([index[_check_label(t, labels)] for t in truths])
    # unparsed: the fixed fill class when given, else an extra "no class" that matches no truth
    fill = index[_check_label(opts["fill_label"], labels)] if opts.get("fill_label") else len(labels)
    y_pred = np.array([fill if p is None else index[_check_label(p, labels)] for p in preds])
    return _Prepared(y_true, y_pred, {"fill_label": opts.get("fill_label")})


def _prepare_multilabel(preds: list, truths: list, opts: Mapping[str, Any]) -> _Prepared:
    labels = _need_labels(opts.get("labels"), "multilabel")
    index = {lab: i for i, lab in enumerate(labels)}

    def hot(names: Iterable[str]) -> np.ndarray:
        row = np.zeros(len(labels), dtype=int)
        for name in names:
            row[index[_check_label(name, labels)]] = 1
        return row

    y_true = np.array([hot(t) for t in truths]).reshape(len(truths), len(labels))
    # an unparsed answer predicts no label at all (never derived from the truth)
    y_pred = np.array([hot(() if p is None else p) for p in preds]).reshape(y_true.shape)
    return _Prepared(y_true, y_pred, {})


def _prepare_regression(preds: list, truths: list, opts: Mapping[str, Any]) -> _Prepared:
    y_true = np.asarray(truths, dtype=float)
    width = 1 if y_true.ndim == 1 else y_true.shape[1]
    parsed = [np.atleast_1d(np.asarray(p, dtype=float)) for p in preds if p is not None]
    if opts.get("fill_value") is not None:
        fill, rule = np.broadcast_to(np.asarray(opts["fill_value"], dtype=float), (width,)), "fill_value"
    elif parsed:
        fill, rule = np.mean(parsed, axis=0), "mean_of_parsed_predictions"
    else:
        fill, rule = np.full(width, np.nan), "none_parsed"
    rows = [fill if p is None else np.atleast_1d(np.asarray(p, dtype=float)) for p in preds]
    y_pred = np.array(rows).reshape(y_true.shape)
    return _Prepared(
        y_true, y_pred, {"fill_rule": rule, "fill_value": fill.tolist() if width > 1 else float(fill[0])}
    )


def _prepare_as_is(preds: list, truths: list, opts: Mapping[str, Any]) -> _Prepared:
    return _Prepared(truths, preds, {})


def _prepare_text(preds: list, truths: list, opts: Mapping[str, Any]) -> _Prepared:
    return _Prepared(
        truths, ["" if p is None else p for p in preds], {"meteor_synonyms": meteor_uses_synonyms()}
    )


def _check_label(label: str, labels: Sequence[str]) -> str:
    if label not in labels:
        raise ValueError(f"label '{label}' is not one of the task's labels {list(labels)}")
    return label


@dataclass(frozen=True)
class TaskType:
    """How a task type's parsed answers become metric inputs, and which metrics it reports by default."""

    prepare: Callable[[list, list, Mapping[str, Any]], _Prepared]
    default_metrics: tuple[str, ...]


TASK_TYPES: dict[str, TaskType] = {
    "binary": TaskType(_prepare_binary, ("mcc", "accuracy", "f1")),
    "multiclass": TaskType(_prepare_multiclass, ("accuracy", "mcc", "f1_macro")),
    "multilabel": TaskType(_prepare_multilabel, ("fmax", "auroc", "subset_accuracy")),
    "regression": TaskType(_prepare_regression, ("pearson", "spearman", "r2")),
    "ec": TaskType(_prepare_as_is, ("ec_hprecision", "ec_hrecall", "ec_hf1", "ec_exact_match")),
    "text": TaskType(_prepare_text, ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l")),
}


def evaluate_predictions(
    predictions: Sequence,
    truths: Sequence,
    task_type: str,
    *,
    labels: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    positive_label: str | None = None,
    fill_value: float | Sequence[float] | None = None,
    fill_label: str | None = None,
) -> dict[str, Any]:
    """Score parsed answers (None = unparsed) against truths with the task type's metrics.

    An unparsed answer is replaced by a value fixed before looking at any truth: `fill_label` for
    classes (binary default: the negative label; multi-class default: a class that matches nothing),
    no label for multi-label, `fill_value` (else the mean of parsed predictions) for regression.
    Returns each metric's value plus `n`, `n_unparsed` and the type's notes (`fill_rule` and
    `fill_value` for regression, `meteor_synonyms` for text, `positive_label`/`fill_label` for classes).
    """
    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown task type '{task_type}': use one of {', '.join(TASK_TYPES)}")
    preds, gold = list(predictions), list(truths)
    if len(preds) != len(gold):
        raise ValueError(f"{len(preds)} predictions but {len(gold)} truths")
    kind = TASK_TYPES[task_type]
    names = tuple(metrics) if metrics is not None else kind.default_metrics
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}: use names from {', '.join(METRICS)}")
    opts = {"labels": labels, "positive_label": positive_label, "fill_value": fill_value, "fill_label": fill_label}
    prepared = kind.prepare(preds, gold, opts)
    result: dict[str, Any] = {name: METRICS[name](prepared.y_true, prepared.y_pred) for name in names}
    result.update(n=len(preds), n_unparsed=sum(p is None for p in preds), **prepared.info)
    return result


def evaluate_answers(
    answers: Sequence[str | None], truths: Sequence, spec: AnswerSpec, task_type: str, **options: Any
) -> dict[str, Any]:
    """Parse free-text answers with the task's spec, then score them with `evaluate_predictions`."""
    options.setdefault("labels", getattr(spec, "labels", None))
    return evaluate_predictions([parse_answer(a, spec) for a in answers], truths, task_type, **options)
