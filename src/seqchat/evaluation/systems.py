"""The systems the benchmark compares, each a `(task_name, test_examples) -> TaskOutput` function.

- `seqchat_system`: a seqchat model answering the test-split questions (free answers parsed, or candidate
  scoring), plus ChatNT's perplexity-based confidence with Platt calibration for binary tasks.
- `kmer_system`: k-mer frequencies + logistic / ridge regression fitted on the training split, its
  regularisation chosen on the validation split.
- `zeroshot_system`: the chat decoder alone, the sequence pasted into the question as text, with the
  Biology-Instructions baseline prompt and hints (Tables 8-9).
The specialist (a pretrained encoder fine-tuned per task) lives in `seqchat.evaluation.specialist`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seqchat.data.records import Example
from seqchat.data.sampling import sample_examples
from seqchat.evaluation.baselines import KmerFit, fit_kmer_selected, upper
from seqchat.evaluation.benchmark import System, TaskOutput, score_task
from seqchat.evaluation.reliability import (
    CalibrationResult,
    calibration_metrics,
    plot_reliability,
    reliability_diagram,
)
from seqchat.modeling.decoders import load_decoder, load_tokenizer
from seqchat.tasks import templates as T
from seqchat.tasks.answers import parse_prediction
from seqchat.tasks.calibration import PlattCalibrator
from seqchat.tasks.predict import (
    SEQ_NAME,
    TaskPrediction,
    class_features,
    class_keys,
    class_probabilities,
    predict_task,
    predictions_from_probabilities,
    question_indices,
)
from seqchat.tasks.registry import CLASS_TYPES, TaskSpec, get_task

# ---------------------------------------------------------------------------------------------
# seqchat
# ---------------------------------------------------------------------------------------------


def seqchat_system(
    model: Any,
    *,
    mode: str = "score",
    batch_size: int = 8,
    max_new_tokens: int = 48,
    calibration_train: int,
    free_answers: bool = True,
    seed: int = 0,
    plot_dir: Path | None = None,
    calibrators: dict[str, PlattCalibrator] | None = None,
) -> System:
    """A seqchat model as a benchmark system.

    mode="score" (the headline, ChatNT's perplexity classifier): each binary or multi-class test example's
    class probabilities come from scoring the task's candidate answers; a Platt model fitted on a
    class-stratified sample of `calibration_train` training-split examples (never test) maps them to
    calibrated probabilities, and the most probable class is the prediction (as `seqchat predict`
    does with the saved calibrator). With `free_answers`, the model also answers in free text; those
    answers are parsed into the `free_prediction` column and scored as the second, "free answer" column.
    mode="generate": free answers are the predictions. Regression, EC and free-text tasks always generate.
    Fitted calibrators are put into `calibrators`.
    """

    def generate(task_name: str, seqs: list[Any], metas: list[dict[str, str]]) -> list[TaskPrediction]:
        return predict_task(model, task_name, seqs, metas=metas, mode="generate", batch_size=batch_size,
                            max_new_tokens=max_new_tokens)  # fmt: skip

    def run(task_name: str, examples: list[Example]) -> TaskOutput:
        task = get_task(task_name)
        seqs, metas = [e.model_input for e in examples], [e.meta for e in examples]
        if task.task_type not in CLASS_TYPES or mode == "generate":
            return TaskOutput(predictions=generate(task_name, seqs, metas))
        keys = class_keys(task_name)
        logits = class_features(model, task_name, seqs, metas=metas, batch_size=batch_size)
        raw = class_probabilities(task_name, logits)
        out = TaskOutput(predictions=[])
        calibrator = None
        if calibration_train > 0:
            train = sample_examples(task_name, "train", calibration_train, seed)
            y = [keys.index(e.target) for e in train]
            if len(set(y)) > 1:
                train_logits = class_features(model, task_name, [e.model_input for e in train],
                                              metas=[e.meta for e in train], batch_size=batch_size)  # fmt: skip
                calibrator = PlattCalibrator().fit(train_logits, y)
                out.metrics["calibration_train_n"] = len(train)
        probs = class_probabilities(task_name, logits, calibrator)
        out.predictions = predictions_from_probabilities(task_name, probs, metas)
        if task.task_type == "binary":
            out.p_positive = probs[:, 1]
            out.columns["p_raw"], out.columns["p_positive"] = list(raw[:, 1]), list(probs[:, 1])
            y_test = np.array([int(e.target) for e in examples])
            # calibration quality on test; the labels are read only here, after every prediction is made
            if calibrator is not None and 0 < y_test.sum() < len(y_test):
                cal = calibration_metrics(y_test, raw[:, 1], probs[:, 1])
                out.metrics.update(cal)
                if plot_dir is not None:
                    diagrams = (reliability_diagram(y_test, raw[:, 1]), reliability_diagram(y_test, probs[:, 1]))
                    plot_reliability(CalibrationResult(raw[:, 1], probs[:, 1], cal, *diagrams, calibrator),
                                     plot_dir / f"{task_name}_reliability.png", title=task_name)  # fmt: skip
        else:
            for k, col in zip(keys, probs.T, strict=True):
                out.columns[f"p_{k}"] = list(col)
        if calibrator is not None and calibrators is not None:
            calibrators[task_name] = calibrator
        if free_answers:
            free = generate(task_name, seqs, metas)
            out.free_predictions = [p.prediction for p in free]
            out.columns["free_answer"] = [p.answer for p in free]
            out.columns["free_prediction"] = out.free_predictions
        return out

    return run


# ---------------------------------------------------------------------------------------------
# k-mer frequencies
# ---------------------------------------------------------------------------------------------

KMER_TYPES = ("binary", "multiclass", "regression")
# protein alphabets make k=6 features nearly all unique: shorter k-mers for proteins
KMER_K: dict[str, tuple[int, ...]] = {"dna": (3, 4, 5, 6), "rna": (3, 4, 5, 6), "protein": (1, 2, 3)}


def _answer_for(task: TaskSpec, value: Any, meta: dict[str, str]) -> str:
    """The canonical answer stating a class, or a regression value written with the task's decimals."""
    if task.task_type == "regression":
        return task.format_value(float(value))
    return T.canonical_answers(task.name, meta)[value]


def example_inputs(example: Example) -> tuple[str, ...]:
    """The input sequences of one example, in the task's `inputs` order: one, or a pair task's two (the k-mer
    and specialist models concatenate one feature block per sequence)."""
    return example.sequences


def kmer_inputs(examples: list[Example]) -> list[Any]:
    """k-mer model inputs: one string per example, or a tuple of strings for multi-sequence examples."""
    rows = [example_inputs(e) for e in examples]
    return [r[0] if len(r) == 1 else r for r in rows]


def kmer_output(task_name: str, model: Any, examples: list[Example]) -> TaskOutput:
    """Predictions of a fitted k-mer pipeline: canonical answers, class probabilities, P(positive)."""
    task = get_task(task_name)
    x = upper(kmer_inputs(examples))
    values = model.predict(x)
    preds = [v.item() if hasattr(v, "item") else v for v in values]
    out = TaskOutput([TaskPrediction(_answer_for(task, v, e.meta), v) for v, e in zip(preds, examples, strict=True)])
    if task.task_type != "regression":
        probs = model.predict_proba(x)
        order = [list(model.classes_).index(k) for k in class_keys(task_name)]
        for p, row in zip(out.predictions, probs[:, order], strict=True):
            p.probabilities = dict(zip(class_keys(task_name), map(float, row), strict=True))
        if task.task_type == "binary":
            out.p_positive = probs[:, list(model.classes_).index(1)]
    return out


def primary_score(task_name: str, examples: list[Example], out: TaskOutput) -> float:
    """The task's primary metric of a system's output on labelled examples (the validation split)."""
    truths = [e.target for e in examples]
    metrics = score_task(task_name, truths, [p.prediction for p in out.predictions], out.p_positive)
    return float(metrics[get_task(task_name).metric])


def fit_task_kmer(task_name: str, train: list[Example], valid: list[Example]) -> KmerFit:
    """A task's k-mer model fitted on `train`, its regularisation chosen by the primary metric on `valid`."""
    task = get_task(task_name)
    return fit_kmer_selected(kmer_inputs(train), [e.target for e in train], task.task_type,
                             lambda m: primary_score(task_name, valid, kmer_output(task_name, m, valid)),
                             KMER_K[task.modality])  # fmt: skip


def kmer_system(max_train: int | None = None, seed: int = 0, max_valid: int | None = None) -> System:
    """k-mer frequency features with logistic (classes) or ridge (regression) regression, trained per task.

    The model is fitted on the task's training split (a seeded class-stratified subsample of max_train when
    given) and its regularisation chosen on the validation split (max_valid likewise).
    """

    def run(task_name: str, examples: list[Example]) -> TaskOutput:
        train = sample_examples(task_name, "train", max_train, seed)
        valid = sample_examples(task_name, "valid", max_valid, seed)
        fit = fit_task_kmer(task_name, train, valid)
        out = kmer_output(task_name, fit.model, examples)
        out.metrics.update(fit.describe(), train_n=len(train), valid_n=len(valid))
        return out

    return run


# ---------------------------------------------------------------------------------------------
# zero-shot decoder (Biology-Instructions baseline prompt)
# ---------------------------------------------------------------------------------------------

BI_PROMPT = "My question is {input} This is a {task_type} task. {hint} Do not explain or repeat."
TASK_TYPE_WORDS = {"binary": "binary classification", "multiclass": "multi-class classification",
                   "regression": "regression", "multilabel": "multi-label classification",
                   "free_text": "text generation"}  # fmt: skip


def zeroshot_hint(task: TaskSpec) -> str:
    """Biology-Instructions Table 8 hint for the task's type (class list for multi-class tasks)."""
    if task.task_type == "binary":
        return "Return yes or no."
    if task.task_type == "multiclass":
        keys = [str(k) for k in task.labels]
        return f"Return one class: {', '.join(keys[:-1])}, or {keys[-1]}."
    if task.task_type == "regression":
        return "Return one numeric value with two decimal places."
    if task.task_type == "multilabel":
        return "Return Enzyme Commission number(s), e.g., 2.7.11.12"
    return "Return one sentence describing the function."  # no such task in Biology-Instructions


def zeroshot_prompt(
    task_name: str, residues: str | Sequence[str], index: int, meta: dict[str, str] | None = None,
    max_residues: int | None = None,
) -> str:  # fmt: skip
    """The test question with the sequence (a pair task: both, in role order) pasted in as text, wrapped in the
    Biology-Instructions baseline prompt."""
    task = get_task(task_name)
    seqs = [residues] if isinstance(residues, str) else list(residues)
    names = list(task.roles) if task.is_pair else [SEQ_NAME]
    question = T.render_test_question(task_name, names if task.is_pair else SEQ_NAME, index, meta)
    for name, s in zip(names, seqs, strict=True):
        question = question.replace(T.seq_ref(name), s[:max_residues] if max_residues else s)
    return BI_PROMPT.format(input=question, task_type=TASK_TYPE_WORDS[task.task_type], hint=zeroshot_hint(task))


def zeroshot_system(
    decoder: str = "smollm2-135m-instruct",
    batch_size: int = 4,
    max_new_tokens: int = 24,
    max_residues: int | None = 1000,
) -> tuple[System, Callable[[], dict[str, Any]]]:
    """The chat decoder alone, greedy; returns the system and a function describing its config.

    Sequences longer than `max_residues` are pasted cut to their first `max_residues` residues (CPU budget);
    the per-example column `truncated` says which.
    """
    import torch

    tok = load_tokenizer(decoder)
    tok.padding_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    lm = load_decoder(decoder).eval()

    def run(task_name: str, examples: list[Example]) -> TaskOutput:
        qs = question_indices(task_name, [e.model_input for e in examples], [e.meta for e in examples])
        prompts = [zeroshot_prompt(task_name, e.sequences, q, e.meta, max_residues)
                   for q, e in zip(qs, examples, strict=True)]  # fmt: skip
        texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
                 for p in prompts]  # fmt: skip
        answers: list[str] = [""] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            enc = tok([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.no_grad():
                gen = lm.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
            for i, row in zip(idx, gen[:, enc["input_ids"].shape[1] :], strict=True):
                answers[i] = tok.decode(row, skip_special_tokens=True).strip()
        preds = [parse_prediction(task_name, a) for a in answers]
        out = TaskOutput([TaskPrediction(a, p, None, p is None) for a, p in zip(answers, preds, strict=True)])
        cut = [int(bool(max_residues) and max(map(len, e.sequences)) > max_residues) for e in examples]
        out.columns["truncated"] = cut
        out.metrics["n_truncated"] = sum(cut)
        return out

    def config() -> dict[str, Any]:
        return {"decoder": decoder, "prompt": BI_PROMPT, "hints": "Biology-Instructions Table 8 by task type",
                "decoding": "greedy", "max_new_tokens": max_new_tokens, "batch_size": batch_size,
                "max_residues_pasted": max_residues, "chat_template": "the decoder's, one user turn"}  # fmt: skip

    return run, config
