"""How each registered task's free-text answers are read: a parsing spec per task and the mapping back to targets.

`parse_prediction(task_name, answer)` returns what the task's targets look like: the class key of the
registry (0/1, "donor", "tRNA", ...) for classification, a float for regression, a tuple of EC numbers
for enzyme function, the stripped text for free-text tasks; None when the answer cannot be read
(counted as wrong by the metrics).

A class is named by its registry phrase ("a promoter"), by every training answer and held-out confidence
phrasing of that class (so the answers a trained model was taught are read exactly, negations included),
and for binary tasks also by yes/no and positive/negative; a multi-class label's short key ("donor",
"5S_rRNA") names it too, since zero-shot prompts list the keys. A binary task whose positive class is the
presence of something (a mark, a promoter) also reads plain assertions and denials of it ("H3 is present",
"no promoter", "the enhancer is absent"; `PRESENCE_SUBJECTS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from seqchat.tasks import templates as T
from seqchat.tasks.parsing import AnswerSpec, ECSpec, LabelSpec, RegressionSpec, parse_answer
from seqchat.tasks.registry import TaskSpec, get_task

BINARY_WORDS = {1: ("yes", "positive"), 0: ("no", "negative")}
# per template family: what the positive class asserts the presence of, written with the task's fills
PRESENCE_SUBJECTS: dict[str, tuple[str, ...]] = {
    "histone": ("{mark}", "{mark} enrichment", "{mark} signal", "{mark} mark", "{mark} peak"),
    "promoter": ("{promoter}", "promoter", "promoter region"),
    "enhancer": ("enhancer",),
    "polya": ("polyadenylation site", "poly(a) site", "polya site", "polyadenylation signal"),
    "splice_binary": ("{site}", "splice site"),
    "tf_binding": ("binding", "tf binding", "binding site", "tf binding site", "transcription factor binding",
                   "transcription factor binding site"),
}  # fmt: skip
# extra names of multi-class labels, per template family (common short names a free answer uses)
CLASS_SYNONYMS: dict[str, dict[str, tuple[str, ...]]] = {
    "ncrna": {"miRNA": ("microRNA", "pre-miRNA"), "CD-box": ("C/D box snoRNA", "C/D box"),
              "HACA-box": ("H/ACA box snoRNA", "H/ACA box"), "Intron_gpI": ("group I intron",),
              "Intron_gpII": ("group II intron",), "tRNA": ("transfer RNA",), "scaRNA": ("small Cajal body RNA",)},
}  # fmt: skip


@dataclass(frozen=True)
class TextSpec:
    """A free-text task: any non-empty answer is its own prediction."""

    def parse(self, answer: str) -> str | None:
        """The stripped answer, or None when it is empty."""
        return answer.strip() or None


def _class_phrases(task: TaskSpec, key: Any) -> list[str]:
    values = T.fill_values(task)
    values["label"] = T.target_text(task, key)
    out = [T.render(t, values) for t in T.answer_templates(task, key)]
    if task.task_type == "binary":
        out += T.confidence_candidates(task.name)[key]
        out += BINARY_WORDS[int(key)]
        if key == 1 and task.fills.get("positive_np"):
            out.append(task.fills["positive_np"])
    else:
        out += CLASS_SYNONYMS.get(task.templates, {}).get(key, ())
        if str(key).lower() != task.labels[key].lower():
            out.append(str(key))
    # an answer without its final full stop still names the class
    return [p.rstrip(" .!") for p in out]


def class_order(task: TaskSpec) -> list[Any]:
    """The task's class keys in label order: positive first for binary tasks, registry order otherwise."""
    return [1, 0] if task.task_type == "binary" else list(task.labels)


@cache
def answer_spec(task_name: str) -> AnswerSpec | TextSpec:
    """The parsing spec of a registered task."""
    task = get_task(task_name)
    if task.task_type in ("binary", "multiclass"):
        keys = class_order(task)
        presence = {}
        if task.task_type == "binary":
            values = T.fill_values(task)
            presence[task.labels[1]] = [T.render(p, values) for p in PRESENCE_SUBJECTS.get(task.templates, ())]
        return LabelSpec(tuple(task.labels[k] for k in keys), {task.labels[k]: _class_phrases(task, k) for k in keys},
                         presence=presence)  # fmt: skip
    if task.task_type == "regression":
        return RegressionSpec(1)
    if task.task_type == "multilabel":
        return ECSpec()
    return TextSpec()


def parse_prediction(task_name: str, answer: str | None) -> Any:
    """The target-shaped prediction in a free-text answer, or None when it cannot be read."""
    task = get_task(task_name)
    parsed = parse_answer(answer, answer_spec(task_name))  # type: ignore[arg-type]
    if parsed is None or task.task_type not in ("binary", "multiclass"):
        return parsed
    return {v: k for k, v in task.labels.items()}[parsed]
