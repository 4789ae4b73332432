"""Task-level prediction with a seqchat model: the one entry point for `seqchat eval`, `seqchat predict` and the API.

    predict_task(model, task_name, sequences, *, metas=None, mode="auto", question_index=None,
                 batch_size=8, max_new_tokens=48, calibrator=None, system_prompt=None) -> list[TaskPrediction]

`model` is a loaded `SeqChatForConditionalGeneration`; `sequences` are residue strings (or `Sequence`s) of
the task's modality; for a pair task (`task.is_pair`) each item is a pair `(first, second)` in the task's
`inputs`/`roles` order (e.g. (antibody, antigen)), asked about as `@<role>`; `metas` optional per-sequence
metadata some questions need (crispr_on_target: {"cell_line": "HeLa"}). Each sequence is asked one of the
task's test-split questions, which training
never uses: template `question_index`, or when None the template picked by a hash of the sequence and its
metadata (`templates.test_question_index`), so the question never follows an example's class or position.

Modes:
- "score" (binary and multi-class): no text is generated. Binary tasks: ChatNT's perplexity classifier,
  the task's held-out confidence phrasings (N positive, N negative) scored with `model.score_many`, the
  class means of exp(mean token log-likelihood) read as logits, softmax -> P(positive); Platt-calibrated
  when a calibrator is given. Multi-class: one canonical answer per class, softmax over the answers'
  total log-likelihoods. The answer is the canonical answer of the most probable class.
- "generate" (every task type): a greedy answer, parsed with `seqchat.tasks.answers.parse_prediction`.
- "auto": "score" for binary and multi-class tasks, "generate" for the others.

Each `TaskPrediction` holds `answer` (text), `prediction` (the registry's class key, a float, a tuple of
EC numbers or text; None when the answer could not be parsed), `probabilities` ({class key: p}, in
"score" mode only) and `parse_failed`.

    confidence(model, task_name, sequences, *, metas=None, question_index=None, calibrator=None,
               batch_size=8) -> np.ndarray

P(positive) of a binary task's answer, the number to show next to it (raw perplexity-based, or
Platt-calibrated). `load_calibrators(model_dir)` reads the per-task calibrators that
`seqchat eval --save-calibration` writes to `<model_dir>/calibration.json` ({} when there is none).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqchat.errors import SeqChatInputError
from seqchat.modeling.sequences import Sequence as Seq
from seqchat.modeling.sequences import make_sequence
from seqchat.tasks import templates as T
from seqchat.tasks.answers import parse_prediction
from seqchat.tasks.calibration import PlattCalibrator, class_logits, positive_probability
from seqchat.tasks.registry import TaskSpec, get_task

CALIBRATION_FILE = "calibration.json"
SEQ_NAME = "seq"
MODES = ("auto", "score", "generate")
# the per-candidate logit of ChatNT's confidence; a saved calibrator was fitted on this
CANDIDATE_LOGIT = "inverse_perplexity"
# one input of a task: a sequence, or for a pair task its two sequences in role order
TaskInput = str | Seq | tuple[str | Seq, str | Seq]


@dataclass
class TaskPrediction:
    """One sequence's answer to a task question, its parsed prediction and (when scored) class probabilities."""

    answer: str
    prediction: Any
    probabilities: dict[Any, float] | None = None
    parse_failed: bool = False


def _residues(s: TaskInput) -> str:
    # a pair's residues joined: a key for the question hash and a length for batching
    if isinstance(s, (tuple, list)):
        return "\0".join(_residues(x) for x in s)
    return s.residues if isinstance(s, Seq) else s


def _named_inputs(task: TaskSpec, item: Any) -> dict[str, Seq]:
    """The sequences one prompt is about, by the name the question uses: `seq`, or the roles of a pair task."""
    if not task.is_pair:
        return {SEQ_NAME: make_sequence(_residues(item), task.modality, SEQ_NAME)}
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise SeqChatInputError(
            f"task '{task.name}' reads pairs of sequences ({' and '.join(task.roles)}); give each input as a pair"
        )
    return {r: make_sequence(_residues(x), m, r) for r, m, x in zip(task.roles, task.inputs, item, strict=True)}


def _meta(metas: Sequence[Mapping[str, str] | None] | None, i: int) -> dict[str, str]:
    return dict(metas[i] or {}) if metas is not None else {}


def question_indices(
    task_name: str,
    sequences: Sequence[TaskInput],
    metas: Sequence[Mapping[str, str] | None] | None = None,
    question_index: int | None = None,
) -> list[int]:
    """The test template each sequence is asked: the fixed `question_index`, else a hash of sequence and metadata."""
    if question_index is not None:
        return [question_index] * len(sequences)
    return [
        T.test_question_index(task_name, _residues(s) + "\0" + json.dumps(_meta(metas, i), sort_keys=True))
        for i, s in enumerate(sequences)
    ]


def _batches(sequences: Sequence[TaskInput], questions: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Index batches of one question and similar length (shared prompt prefix, less padding), longest first."""
    order = sorted(range(len(sequences)), key=lambda i: (questions[i], -len(_residues(sequences[i]))))
    batch: list[int] = []
    for i in order:
        if batch and (len(batch) >= max(1, batch_size) or questions[batch[0]] != questions[i]):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def _prompts(
    task: TaskSpec,
    sequences: Sequence[TaskInput],
    idx: list[int],
    metas: Sequence[Mapping[str, str] | None] | None,
    questions: Sequence[int],
    system_prompt: str | None,
) -> tuple[list[list[dict[str, str]]], list[dict[str, Seq]]]:
    convs, seqs = [], []
    system = T.system_prompt() if system_prompt is None else system_prompt
    for i in idx:
        named = _named_inputs(task, sequences[i])
        q = T.render_test_question(task.name, list(named), questions[i], _meta(metas, i))
        convs.append(([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": q}])
        seqs.append(named)
    return convs, seqs


def _run_batches(
    model: Any,
    task: TaskSpec,
    sequences: Sequence[TaskInput],
    metas: Sequence[Mapping[str, str] | None] | None,
    question_index: int | None,
    batch_size: int,
    system_prompt: str | None,
    step: Callable[[dict[str, Any], list[int]], list[Any]],
) -> list[Any]:
    """Process left-padded prompt batches and put each batch's per-prompt results back in input order."""
    if metas is not None and len(metas) != len(sequences):
        raise SeqChatInputError(f"{len(sequences)} sequences but {len(metas)} metadata entries")
    out: list[Any] = [None] * len(sequences)
    model.eval()
    questions = question_indices(task.name, sequences, metas, question_index)
    for idx in _batches(sequences, questions, batch_size):
        convs, seqs = _prompts(task, sequences, idx, metas, questions, system_prompt)
        batch = model.processor(convs, seqs, add_generation_prompt=True, padding_side="left")
        with torch.no_grad():
            for i, r in zip(idx, step(batch, idx), strict=True):
                out[i] = r
    return out


def candidate_scores(
    model: Any,
    task_name: str,
    sequences: Sequence[TaskInput],
    *,
    metas: Sequence[Mapping[str, str] | None] | None = None,
    question_index: int | None = None,
    batch_size: int = 8,
    system_prompt: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A binary task's confidence phrasings scored per sequence: (n, 2N) mean log-likelihoods and the positive mask."""
    task = get_task(task_name)
    lists = [
        T.confidence_candidates(task_name, dict(metas[i] or {}) if metas else None) for i in range(len(sequences))
    ]
    positive = np.array([True] * len(lists[0][1]) + [False] * len(lists[0][0])) if lists else np.zeros(0, bool)

    def step(batch: dict[str, Any], idx: list[int]) -> list[np.ndarray]:
        cands = [lists[i][1] + lists[i][0] for i in idx]
        return list(model.score_many(batch, cands)["mean_logprob"].float().cpu().numpy())

    rows = _run_batches(model, task, sequences, metas, question_index, batch_size, system_prompt, step)
    return np.array(rows, dtype=float).reshape(len(sequences), positive.size), positive


def _binary_probability(scores: np.ndarray, positive: np.ndarray, calibrator: PlattCalibrator | None) -> np.ndarray:
    logits = class_logits(scores, positive, candidate_logit=CANDIDATE_LOGIT)
    return calibrator.predict_proba(logits) if calibrator is not None else positive_probability(logits)


def confidence(
    model: Any,
    task_name: str,
    sequences: Sequence[TaskInput],
    *,
    metas: Sequence[Mapping[str, str] | None] | None = None,
    question_index: int | None = None,
    calibrator: PlattCalibrator | None = None,
    batch_size: int = 8,
    system_prompt: str | None = None,
) -> np.ndarray:
    """P(positive) per sequence for a binary task: ChatNT's perplexity-based probability, Platt-calibrated if given."""
    task = get_task(task_name)
    if task.task_type != "binary":
        raise SeqChatInputError(f"confidence is defined for binary tasks; '{task_name}' is {task.task_type}")
    if not sequences:
        return np.zeros(0)
    scores, positive = candidate_scores(
        model, task_name, sequences, metas=metas, question_index=question_index, batch_size=batch_size,
        system_prompt=system_prompt,
    )  # fmt: skip
    return _binary_probability(scores, positive, calibrator)


def _score_multiclass(
    model: Any, task: TaskSpec, sequences: Sequence[TaskInput], metas: Any, question_index: int | None,
    batch_size: int, system_prompt: str | None,
) -> np.ndarray:  # fmt: skip
    keys = list(task.labels)
    answers = [T.canonical_answers(task.name, dict(metas[i] or {}) if metas else None) for i in range(len(sequences))]

    def step(batch: dict[str, Any], idx: list[int]) -> list[np.ndarray]:
        r = model.score_many(batch, [[answers[i][k] for k in keys] for i in idx])
        # total log-likelihood, so that each answer's probability is that of the whole sentence
        return list(torch.softmax((r["mean_logprob"] * r["num_tokens"]).float(), -1).cpu().numpy())

    return np.array(_run_batches(model, task, sequences, metas, question_index, batch_size, system_prompt, step))


def class_features(
    model: Any,
    task_name: str,
    sequences: Sequence[TaskInput],
    *,
    metas: Sequence[Mapping[str, str] | None] | None = None,
    question_index: int | None = None,
    batch_size: int = 8,
    system_prompt: str | None = None,
) -> np.ndarray:
    """What a class task's calibrator reads, (n, C) in `class_keys` order: binary tasks the two ChatNT class
    logits (mean inverse perplexity of the negative and the positive phrasings), multi-class tasks the log
    of the softmax over the canonical answers' total log-likelihoods."""
    task = get_task(task_name)
    if task.task_type not in ("binary", "multiclass"):
        raise SeqChatInputError(f"'{task_name}' is {task.task_type}; class scores need a binary or multi-class task")
    if not sequences:
        return np.zeros((0, len(class_keys(task_name))))
    if task.task_type == "binary":
        scores, positive = candidate_scores(
            model, task_name, sequences, metas=metas, question_index=question_index, batch_size=batch_size,
            system_prompt=system_prompt,
        )  # fmt: skip
        return class_logits(scores, positive, candidate_logit=CANDIDATE_LOGIT)
    probs = _score_multiclass(model, task, sequences, metas, question_index, batch_size, system_prompt)
    return np.log(np.clip(probs, 1e-30, None))


def class_probabilities(task_name: str, logits: np.ndarray, calibrator: PlattCalibrator | None = None) -> np.ndarray:
    """(n, C) class probabilities from `class_features`: the calibrator's when given, else a plain softmax."""
    x = np.asarray(logits, dtype=float)
    if calibrator is not None:
        if get_task(task_name).task_type == "binary":
            p = calibrator.predict_proba(x)
            return np.stack([1 - p, p], axis=1)
        return calibrator.predict_classes(x)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def class_keys(task_name: str) -> list[Any]:
    """The class keys in the column order of probability arrays: [0, 1] for binary tasks, registry order otherwise."""
    task = get_task(task_name)
    return [0, 1] if task.task_type == "binary" else list(task.labels)


def predictions_from_probabilities(
    task_name: str, probs: np.ndarray, metas: Sequence[Mapping[str, str] | None] | None = None
) -> list[TaskPrediction]:
    """Most probable class per row of (n, n_classes) probabilities (columns in `class_keys` order), with its
    canonical answer."""
    keys = class_keys(task_name)
    out = []
    for i, row in enumerate(np.asarray(probs, dtype=float)):
        best = keys[int(np.argmax(row))]
        canon = T.canonical_answers(task_name, dict(metas[i] or {}) if metas else None)
        out.append(TaskPrediction(canon[best], best, {k: float(v) for k, v in zip(keys, row, strict=True)}))
    return out


def predict_task(
    model: Any,
    task_name: str,
    sequences: Sequence[TaskInput],
    *,
    metas: Sequence[Mapping[str, str] | None] | None = None,
    mode: str = "auto",
    question_index: int | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 48,
    calibrator: PlattCalibrator | None = None,
    system_prompt: str | None = None,
) -> list[TaskPrediction]:
    """Answer a task's test question about each sequence (see the module docstring for the modes)."""
    task = get_task(task_name)
    if mode not in MODES:
        raise SeqChatInputError(f"unknown mode '{mode}': use one of {', '.join(MODES)}")
    classes = task.task_type in ("binary", "multiclass")
    if mode == "auto":
        mode = "score" if classes else "generate"
    if not sequences:
        return []
    common = dict(metas=metas, question_index=question_index, batch_size=batch_size, system_prompt=system_prompt)
    if mode == "score":
        if not classes:
            raise SeqChatInputError(
                f"mode 'score' needs a binary or multi-class task; '{task_name}' is {task.task_type}"
            )
        logits = class_features(model, task_name, sequences, **common)  # type: ignore[arg-type]
        return predictions_from_probabilities(task_name, class_probabilities(task_name, logits, calibrator), metas)
    tok = model.processor.tokenizer

    def step(batch: dict[str, Any], idx: list[int]) -> list[str]:
        tokens = model.generate(batch, max_new_tokens=max_new_tokens)
        return [tok.decode(t, skip_special_tokens=True).strip() for t in tokens]

    answers = _run_batches(model, task, sequences, metas, question_index, batch_size, system_prompt, step)
    preds = [parse_prediction(task_name, a) for a in answers]
    return [TaskPrediction(a, p, None, p is None) for a, p in zip(answers, preds, strict=True)]


# ---- saved Platt calibrators ------------------------------------------------------------------


def calibrator_to_dict(c: PlattCalibrator) -> dict[str, Any]:
    """A fitted calibrator as plain JSON-able numbers."""
    if c.model is None:
        raise ValueError("the calibrator is not fitted")
    out = {"features": c.features, "C": c.C, "coef": c.model.coef_.tolist(), "intercept": c.model.intercept_.tolist(),
           "classes": c.model.classes_.astype(int).tolist()}  # fmt: skip
    if c.mean is not None and c.scale is not None:
        out.update(mean=np.asarray(c.mean).tolist(), scale=np.asarray(c.scale).tolist())
    return out


def calibrator_from_dict(d: Mapping[str, Any]) -> PlattCalibrator:
    """Rebuild a fitted calibrator from `calibrator_to_dict` output (binary or multi-class)."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=d["C"], solver="lbfgs")
    lr.coef_, lr.intercept_ = np.array(d["coef"], dtype=float), np.array(d["intercept"], dtype=float)
    lr.classes_ = np.array(d.get("classes", [0, 1]))
    lr.n_features_in_ = lr.coef_.shape[1]
    # files written before standardisation have no mean/scale: their coefficients act on the raw features
    mean = np.array(d["mean"], dtype=float) if "mean" in d else None
    scale = np.array(d["scale"], dtype=float) if "scale" in d else None
    return PlattCalibrator(features=d["features"], C=d["C"], model=lr, mean=mean, scale=scale)


def save_calibrators(path: str | Path, calibrators: Mapping[str, PlattCalibrator], info: Mapping[str, Any]) -> Path:
    """Write per-task calibrators (and how they were fitted) as JSON."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "candidate_logit": CANDIDATE_LOGIT,
        **info,
        "tasks": {t: calibrator_to_dict(c) for t, c in calibrators.items()},
    }
    p.write_text(json.dumps(doc, indent=1))
    return p


def load_calibrators(path: str | Path) -> dict[str, PlattCalibrator]:
    """Per-task calibrators from a calibration.json, or from a model folder holding one; {} when absent."""
    p = Path(path)
    if p.is_dir():
        p = p / CALIBRATION_FILE
    if not p.exists():
        return {}
    doc = json.loads(p.read_text())
    if doc.get("candidate_logit", CANDIDATE_LOGIT) != CANDIDATE_LOGIT:
        raise SeqChatInputError(
            f"'{p}' was fitted on '{doc['candidate_logit']}' logits; this seqchat uses {CANDIDATE_LOGIT}"
        )
    return {t: calibrator_from_dict(d) for t, d in doc["tasks"].items()}
