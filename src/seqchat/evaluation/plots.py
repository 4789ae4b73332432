"""Per-task plots of a benchmark run: confusion matrices for classification, predicted-vs-true scatter for
regression."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seqchat.evaluation.metrics import pearson
from seqchat.tasks.answers import class_order
from seqchat.tasks.registry import TaskSpec

UNPARSED_LABEL = "unparsed"


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion(task: TaskSpec, truths: Sequence[Any], preds: Sequence[Any]) -> tuple[np.ndarray, list[str], list[str]]:
    """Counts (true class x predicted class), with a last predicted column for unparsed answers."""
    keys = class_order(task)
    rows = {k: i for i, k in enumerate(keys)}
    m = np.zeros((len(keys), len(keys) + 1), dtype=int)
    for t, p in zip(truths, preds, strict=True):
        m[rows[t], len(keys) if p is None else rows[p]] += 1
    names = [str(k) for k in keys]
    return m, names, [*names, UNPARSED_LABEL]


def plot_confusion(path: Path, task: TaskSpec, truths: Sequence[Any], preds: Sequence[Any], title: str) -> Path:
    """Confusion-matrix PNG; the extra column counts unparsed answers (all of them wrong)."""
    plt = _pyplot()
    m, row_names, col_names = confusion(task, truths, preds)
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * len(col_names), 1.0 + 0.6 * len(row_names)))
    ax.imshow(m, cmap="Blues")
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > m.max() / 2 else "black", fontsize=8)
    ax.set_xticks(range(len(col_names)), col_names, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(row_names)), row_names, fontsize=7)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return _save(fig, plt, path)


def plot_scatter(path: Path, truths: Sequence[float], preds: Sequence[float | None], title: str) -> Path:
    """Predicted-vs-true scatter of the parsed answers, Pearson r over them in the title."""
    plt = _pyplot()
    ok = [(float(t), float(p)) for t, p in zip(truths, preds, strict=True) if p is not None]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    note = f"{len(truths) - len(ok)} unparsed"
    if ok:
        t, p = map(np.array, zip(*ok, strict=True))
        r = pearson(t, p) if len(ok) > 2 and np.std(p) > 0 and np.std(t) > 0 else float("nan")
        ax.scatter(t, p, s=8, alpha=0.6)
        lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
        ax.plot([lo, hi], [lo, hi], ls="--", c="grey", lw=1)
        note = f"Pearson r {r:.3f} over {len(ok)} parsed, {note}"
    ax.set(xlabel="true", ylabel="predicted", title=f"{title}\n{note}")
    return _save(fig, plt, path)


def _save(fig: Any, plt: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_task(plot_dir: Path, task: TaskSpec, truths: Sequence[Any], preds: Sequence[Any], title: str) -> Path | None:
    """The task type's plot (none for EC numbers and free text)."""
    if task.task_type in ("binary", "multiclass"):
        return plot_confusion(plot_dir / f"{task.name}_confusion.png", task, truths, preds, title)
    if task.task_type == "regression":
        return plot_scatter(plot_dir / f"{task.name}_scatter.png", truths, preds, title)
    return None
