"""Evaluation: parse free-text answers, score tasks, calibrate confidence, k-mer baselines."""

from seqchat.evaluation.metrics import (
    EMBEDDING_METRICS,
    METRICS,
    TASK_TYPES,
    evaluate_answers,
    evaluate_predictions,
)
from seqchat.tasks.parsing import (
    UNPARSED,
    ECSpec,
    LabelSpec,
    RegressionSpec,
    parse_answer,
    parse_ec_numbers,
    parse_label,
    parse_labels,
    parse_numbers,
)

__all__ = [
    "EMBEDDING_METRICS",
    "METRICS",
    "TASK_TYPES",
    "UNPARSED",
    "ECSpec",
    "LabelSpec",
    "RegressionSpec",
    "evaluate_answers",
    "evaluate_predictions",
    "parse_answer",
    "parse_ec_numbers",
    "parse_label",
    "parse_labels",
    "parse_numbers",
]
