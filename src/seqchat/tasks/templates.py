"""English question/answer templates per task family (YAML tables under `templates/`) and their rendering.

Training questions and test questions are disjoint sets; answer templates used for training are disjoint from
the confidence candidates used to score binary answers at evaluation time.
"""

from __future__ import annotations

import hashlib
import random
import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from seqchat.errors import SeqChatInputError
from seqchat.tasks.registry import TaskSpec, get_task

BINARY_KEYS = {0: "negative", 1: "positive"}


@dataclass(frozen=True)
class TemplateFamily:
    """The templates shared by the tasks of one family (task-specific words come from the task's fills)."""

    name: str
    questions_train: tuple[str, ...]
    questions_test: tuple[str, ...]
    answers: dict[str, tuple[str, ...]]
    confidence: dict[str, tuple[str, ...]]
    canonical: str | None


def _read_yaml(name: str) -> dict[str, Any]:
    path = resources.files("seqchat.tasks") / "templates" / f"{name}.yaml"
    if not path.is_file():
        raise SeqChatInputError(f"no template file '{name}.yaml' in seqchat/tasks/templates")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@cache
def family(name: str) -> TemplateFamily:
    """Load one template family from its YAML file."""
    d = _read_yaml(name)
    return TemplateFamily(
        name=name,
        questions_train=tuple(d["questions"]["train"]),
        questions_test=tuple(d["questions"]["test"]),
        answers={k: tuple(v) for k, v in d["answers"].items()},
        confidence={k: tuple(v) for k, v in (d.get("confidence") or {}).items()},
        canonical=d.get("canonical"),
    )


@cache
def multi() -> dict[str, Any]:
    """Templates for multi-sequence and multi-turn conversations, and the system prompt."""
    return _read_yaml("multi")


def system_prompt() -> str:
    """The system prompt put first in every conversation of the default build."""
    return " ".join(str(multi()["system_prompt"]).split())


def placeholders(template: str) -> set[str]:
    """The `{name}` placeholders a template uses."""
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


def render(template: str, values: dict[str, str]) -> str:
    """Fill a template; a missing value is a clear error naming the placeholder."""
    missing = placeholders(template) - set(values)
    if missing:
        raise SeqChatInputError(f"template '{template}' needs {sorted(missing)}, which this example does not provide")
    return template.format_map(values)


def fill_values(task: TaskSpec, meta: dict[str, str] | None = None) -> dict[str, str]:
    """Task fills, overridden by the example's metadata, plus the value range for regression tasks."""
    values = dict(task.fills)
    values.update({k: v for k, v in (meta or {}).items() if v})
    if task.value_range is not None:
        values["lo"], values["hi"] = (f"{x:g}" for x in task.value_range)
    # fills may themselves refer to metadata (e.g. a quantity "in {cell_line} cells")
    try:
        return {k: v.format_map(values) if "{" in v else v for k, v in values.items()}
    except KeyError as e:
        raise SeqChatInputError(f"task '{task.name}' needs the metadata field {e} for its questions") from None


def target_text(task: TaskSpec, target: Any) -> str:
    """The words that stand for a target inside an answer: class phrase, EC list, description or number."""
    if task.task_type == "regression":
        return task.format_value(float(target))
    if task.task_type == "multilabel":
        items = [f"EC {t}" for t in target]
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    if task.task_type == "free_text":
        return str(target)
    return task.label_name(target)


def question_templates(task: TaskSpec, split: str) -> tuple[str, ...]:
    """Question templates for a split: the test set uses its own, never seen in training."""
    fam = family(task.templates)
    return fam.questions_test if split == "test" else fam.questions_train


def answer_templates(task: TaskSpec, target: Any) -> tuple[str, ...]:
    """Training answer templates for a target."""
    fam = family(task.templates)
    if task.task_type == "binary":
        return fam.answers[BINARY_KEYS[int(target)]]
    return fam.answers["any"]


def seq_ref(name: str) -> str:
    """How a message refers to a named sequence."""
    return f"@{name}"


def seq_values(task: TaskSpec, seq_names: str | Sequence[str]) -> dict[str, str]:
    """Placeholder values that refer to the input sequences: `{seq}`, or one per role for a pair task."""
    names = [seq_names] if isinstance(seq_names, str) else list(seq_names)
    if not task.is_pair:
        return {"seq": seq_ref(names[0])}
    if len(names) != len(task.roles):
        raise SeqChatInputError(
            f"task '{task.name}' asks about two sequences ({' and '.join(task.roles)}); {len(names)} given"
        )
    return {role: seq_ref(n) for role, n in zip(task.roles, names, strict=True)}


def render_question(
    task: TaskSpec, seq_name: str | Sequence[str], split: str, rng: random.Random, meta: dict[str, str] | None = None
) -> tuple[str, int]:
    """A random question about one sequence (a pair task: its two, in role order) from the split's template set;
    returns (text, template index)."""
    temps = question_templates(task, split)
    i = rng.randrange(len(temps))
    return render(temps[i], {**fill_values(task, meta), **seq_values(task, seq_name)}), i


def render_answer(
    task: TaskSpec, target: Any, rng: random.Random, meta: dict[str, str] | None = None
) -> tuple[str, int]:
    """A random training answer stating the target; returns (text, template index)."""
    temps = answer_templates(task, target)
    i = rng.randrange(len(temps))
    values = fill_values(task, meta)
    values["label" if task.task_type != "regression" else "value"] = target_text(task, target)
    return render(temps[i], values), i


def render_test_question(
    task_name: str, seq_names: str | list[str], index: int = 0, meta: dict[str, str] | None = None
) -> str:
    """The index-th test question of a task about a sequence name, or a pair task's two names in role order
    (evaluation uses these, never training ones)."""
    task = get_task(task_name)
    temps = question_templates(task, "test")
    return render(temps[index % len(temps)], {**fill_values(task, meta), **seq_values(task, seq_names)})


def test_question_index(task_name: str, key: str) -> int:
    """Which test template asks about an example: a hash of its key (sequence and metadata), never its class or
    position."""
    n = len(question_templates(get_task(task_name), "test"))
    return int.from_bytes(hashlib.sha256(f"{task_name}\0{key}".encode()).digest()[:8], "big") % n


def confidence_candidates(task_name: str, meta: dict[str, str] | None = None) -> dict[int, list[str]]:
    """Positive (1) and negative (0) answer phrasings of a binary task that training never uses (ChatNT
    calibration)."""
    task = get_task(task_name)
    if task.task_type != "binary":
        raise SeqChatInputError(
            f"task '{task_name}' is {task.task_type}; confidence candidates exist for binary tasks"
        )
    fam = family(task.templates)
    values = fill_values(task, meta)
    return {lab: [render(t, values) for t in fam.confidence[key]] for lab, key in BINARY_KEYS.items()}


def canonical_answers(task_name: str, meta: dict[str, str] | None = None) -> dict[Any, str]:
    """One canonical answer per class (binary or multi-class), for scoring candidate answers."""
    task = get_task(task_name)
    values = fill_values(task, meta)
    if task.task_type == "binary":
        return {lab: render(family(task.templates).answers[key][0], values) for lab, key in BINARY_KEYS.items()}
    if task.task_type != "multiclass":
        raise SeqChatInputError(f"task '{task_name}' is {task.task_type}; canonical answers exist for class tasks")
    canon = family(task.templates).canonical or family(task.templates).answers["any"][0]
    return {lab: render(canon, {**values, "label": phrase}) for lab, phrase in task.labels.items()}


def task_tag(task: TaskSpec) -> str:
    """The Biology-Instructions style task tag put before some training questions."""
    return f"[{task.tag_kind}: {task.name}]"
