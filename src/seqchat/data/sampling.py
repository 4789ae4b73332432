"""Deterministic, seeded, class-stratified subsamples of a task's split (benchmarks, baselines, training)."""

from __future__ import annotations

import random
from typing import Any

from seqchat.data.build import load_split
from seqchat.data.records import Example
from seqchat.tasks.registry import CLASS_TYPES, TaskSpec, get_task


def _target_key(task: TaskSpec, target: Any) -> Any:
    return target if task.task_type in CLASS_TYPES else None


def sample_examples(task_name: str, split: str, max_n: int | None, seed: int = 0) -> list[Example]:
    """A split's examples, or a deterministic seeded subsample of max_n, stratified by class for class tasks.

    Each class gets its share of max_n by largest remainder (at least one while there is room); the
    examples keep their order in the split.
    """
    rows = load_split(task_name, split)
    if max_n is None or max_n >= len(rows):
        return rows
    task = get_task(task_name)
    rng = random.Random(f"{seed}:{task_name}:{split}:benchmark")
    groups: dict[Any, list[int]] = {}
    for i, ex in enumerate(rows):
        groups.setdefault(_target_key(task, ex.target), []).append(i)
    keys = sorted(groups, key=str)
    exact = {k: max_n * len(groups[k]) / len(rows) for k in keys}
    quota = {k: min(len(groups[k]), max(1 if max_n >= len(keys) else 0, int(exact[k]))) for k in keys}
    for k in sorted(keys, key=lambda k: exact[k] - int(exact[k]), reverse=True):
        if sum(quota.values()) >= max_n:
            break
        quota[k] = min(len(groups[k]), quota[k] + 1)
    while sum(quota.values()) > max_n:  # the "at least one" floor overshot: trim the largest class
        quota[max(keys, key=lambda k: quota[k])] -= 1
    chosen = sorted(i for k in keys for i in rng.sample(groups[k], quota[k]))
    return [rows[i] for i in chosen]
