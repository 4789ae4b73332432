"""The benchmark machinery every system shares: test subsamples, task scoring, and one run folder per system.

A *system* (seqchat, a baseline) is a function `(task_name, examples) -> TaskOutput`. `run_benchmark`
feeds it each task's test subsample (`seqchat.data.sampling.sample_examples`: deterministic, seeded,
class-stratified), scores the predictions with the task's metrics (`score_task`: unparsed answers count as
wrong) and writes

  OUT/predictions/{task}.csv   one row per test example: truth, answer, parsed prediction, parse failure
  OUT/tasks/{task}.json        that task's metrics, timing and notes (a rerun with --resume skips it)
  OUT/metrics.csv              long format: system, task, group, task_type, metric, value
  OUT/results.md               a markdown table, one row per task
  OUT/plots/{task}_*.png       confusion matrix (classification) or predicted-vs-true scatter with Pearson r
  OUT/run.json                 system, command, git SHA, data version, seed, subsample, config, throughput
"""

from __future__ import annotations

import csv
import datetime
import json
import logging
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from seqchat.data.build import load_split
from seqchat.data.paths import data_dir, data_version
from seqchat.data.records import Example
from seqchat.data.sampling import sample_examples
from seqchat.errors import SeqChatInputError
from seqchat.evaluation.metrics import auroc, evaluate_predictions
from seqchat.evaluation.plots import plot_task
from seqchat.progress import progress_bar
from seqchat.tasks.answers import class_order
from seqchat.tasks.parsing import normalize_ec
from seqchat.tasks.predict import TaskPrediction
from seqchat.tasks.registry import CLASS_TYPES, TASKS, TaskSpec, get_task

logger = logging.getLogger(__name__)

# registry metric names that are not METRICS names (older registry spellings), per registry task type
_METRIC_NAMES: dict[str, dict[str, str]] = {
    "multilabel": {"hierarchical_f1": "ec_hf1", "accuracy": "ec_exact_match"},
    "free_text": {"bleu": "bleu4"},
}
# registry task type -> metrics-module task type
_EVAL_TYPES = {"binary": "binary", "multiclass": "multiclass", "regression": "regression", "multilabel": "ec",
               "free_text": "text"}  # fmt: skip


def benchmark_tasks(spec: str | Sequence[str] = "all") -> list[str]:
    """Task names from 'all', a comma-separated string or a list (the shared-data tasks; user tasks by name)."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [n.strip() for n in names if n.strip()]
    if names == ["all"]:
        return [n for n, t in TASKS.items() if t.group != "user"]
    return [get_task(n).name for n in names]


# ---------------------------------------------------------------------------------------------
# Subsamples
# ---------------------------------------------------------------------------------------------


def sampling_note(max_n: int | None, seed: int) -> str:
    """How a run's test examples were chosen, in words."""
    if max_n is None:
        return "the full test split of every task"
    return (f"at most {max_n} test examples per task: a deterministic subsample (seed {seed}), stratified by class "
            "for classification tasks (sample_examples in seqchat.data.sampling)")  # fmt: skip


@cache
def train_mean(task_name: str) -> float:
    """Mean training-split target of a regression task: the fill value for unparsed answers."""
    return float(np.mean([float(e.target) for e in load_split(task_name, "train")]))


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------


def metric_names(task: TaskSpec) -> list[str]:
    """The metrics reported for a task: MCC for every classification task, then the registry's metrics."""
    names = list(task.metrics)
    if task.task_type in CLASS_TYPES and "mcc" not in names:
        names.insert(0, "mcc")
    return names


@cache
def train_majority(task_name: str) -> Any:
    """The most frequent training-split class of a class task: the fixed class given to an unparsed answer."""
    counts: dict[Any, int] = {}
    for e in load_split(task_name, "train"):
        counts[e.target] = counts.get(e.target, 0) + 1
    return max(sorted(counts, key=str), key=lambda k: counts[k])


def _hard_binary(preds: Sequence[Any], fill: Any) -> np.ndarray:
    # an unparsed answer is the fixed fill class, chosen without looking at the truth
    return np.array([int((fill if p is None else p) == 1) for p in preds], dtype=float)


def score_task(
    task_name: str,
    truths: Sequence[Any],
    predictions: Sequence[Any],
    p_positive: Sequence[float] | None = None,
) -> dict[str, Any]:
    """A task's metrics (registry names) from targets and parsed predictions (None = unparsed).

    An unparsed answer never looks at the truth: class tasks give it the training-split majority class,
    regression the training-split mean, EC answers no number. AUROC of a binary task uses `p_positive`
    when the system gives probabilities, else the hard labels.
    """
    task = get_task(task_name)
    names = metric_names(task)
    kind = _EVAL_TYPES[task.task_type]
    alias = _METRIC_NAMES.get(task.task_type, {})
    opts: dict[str, Any] = {}
    truths, preds = list(truths), list(predictions)
    if task.task_type in CLASS_TYPES:
        labels = [task.labels[k] for k in class_order(task)]
        fill = task.labels[train_majority(task_name)] if any(p is None for p in preds) else None
        opts = {"labels": labels, "positive_label": labels[0] if kind == "binary" else None, "fill_label": fill}
        truths = [task.labels[t] for t in truths]
        preds = [None if p is None else task.labels[p] for p in preds]
    elif kind == "regression":
        opts = {"fill_value": train_mean(task_name)}
    plain = [m for m in names if m not in ("auroc", "fmax")]
    out = evaluate_predictions(preds, truths, kind, metrics=[alias.get(m, m) for m in plain], **opts)
    result: dict[str, Any] = {m: out.pop(alias.get(m, m)) for m in plain}
    if "auroc" in names:
        y = np.array([int(t == opts["positive_label"]) for t in truths])
        hard = None if p_positive is not None else _hard_binary(predictions, train_majority(task_name))
        score = np.asarray(p_positive, dtype=float) if p_positive is not None else hard
        result["auroc"] = auroc(y, score) if 0 < y.sum() < len(y) else float("nan")
        result["auroc_from"] = "probabilities" if p_positive is not None else "hard labels"
    if "fmax" in names:
        result["fmax"] = _ec_fmax(truths, preds)
    return {**result, **out}


def _ec_fmax(truths: list[Any], preds: list[Any]) -> float:
    truth_sets = [frozenset(normalize_ec(e) for e in t) for t in truths]
    labels = sorted(set().union(*truth_sets, *(p for p in preds if p is not None)))
    out = evaluate_predictions([p if p is None else frozenset(p) for p in preds], truth_sets, "multilabel",
                               labels=labels, metrics=["fmax"])  # fmt: skip
    return out["fmax"]


# ---------------------------------------------------------------------------------------------
# Provenance
# ---------------------------------------------------------------------------------------------


def git_state() -> dict[str, Any]:
    """The repository's commit and whether tracked files differ from it (None outside a checkout)."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=here, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    sha = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"git_sha": sha, "git_dirty": bool(dirty) if dirty is not None else None}


def versions() -> dict[str, str]:
    """Versions of the interpreter and the libraries that shape the numbers."""
    import sklearn
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "scikit-learn": sklearn.__version__, "numpy": np.__version__, "machine": platform.machine(),
            "threads": str(torch.get_num_threads())}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------


@dataclass
class TaskOutput:
    """What a system returns for one task: predictions in example order and optional extras."""

    predictions: list[TaskPrediction]
    p_positive: np.ndarray | None = None  # binary tasks: P(positive) per example, for AUROC
    columns: dict[str, Sequence[Any]] = field(default_factory=dict)  # extra per-example CSV columns
    metrics: dict[str, Any] = field(default_factory=dict)  # extra task metrics (e.g. calibration)
    # class tasks scored by candidates: the parsed free answers too, scored as the "free answer" column
    free_predictions: list[Any] | None = None


System = Callable[[str, list[Example]], TaskOutput]


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (tuple, list, frozenset, set)):
        return ";".join(str(x) for x in v)
    return v


def write_predictions(path: Path, examples: list[Example], out: TaskOutput) -> None:
    """One CSV row per test example."""
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = list(out.columns)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["i", "source_id", "length", "meta", "truth", "prediction", "parse_failed", "answer", *extra])
        for i, (ex, p) in enumerate(zip(examples, out.predictions, strict=True)):
            meta = json.dumps(ex.meta, sort_keys=True) if ex.meta else ""
            w.writerow([i, ex.source_id, len(ex.residues), meta, _cell(ex.target), _cell(p.prediction),
                        int(p.prediction is None), p.answer, *(_cell(out.columns[c][i]) for c in extra)])  # fmt: skip


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if np.isnan(v) else f"{v:.3f}"
    return str(v)


def _results_table(system: str, rows: list[dict[str, Any]]) -> str:
    lines = [f"# {system}: results", "",
             "| task | type | n | unparsed | metric | value | MCC | other metrics | ex/s |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        task = get_task(r["task"])
        m = r["metrics"]
        others = ", ".join(
            f"{k} {_fmt(m[k])}" for k in metric_names(task)[1:] if k in m and k not in (task.metric, "mcc")
        )
        mcc = _fmt(m["mcc"]) if "mcc" in m else ""
        lines.append(f"| {task.name} | {task.task_type} | {m['n']} | {m['n_unparsed']} | {task.metric} | "
                     f"{_fmt(m.get(task.metric, float('nan')))} | {mcc} | {others} | {r['examples_per_s']:.2f} |")
    return "\n".join(lines) + "\n"


def _long_rows(system: str, rows: list[dict[str, Any]]) -> list[list[Any]]:
    out = []
    for r in rows:
        task = get_task(r["task"])
        for k, v in r["metrics"].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out.append([system, task.name, task.group, task.task_type, k, _cell(float(v))])
        out.append([system, task.name, task.group, task.task_type, "examples_per_s", _cell(r["examples_per_s"])])
    return out


def run_benchmark(
    system_name: str,
    system: System,
    tasks: Sequence[str],
    out_dir: str | Path,
    *,
    split: str = "test",
    max_per_task: int | None = None,
    seed: int = 0,
    config: Mapping[str, Any] | None = None,
    resume: bool = False,
    plots: bool = True,
    command: str | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run one system over tasks and write the run folder (see the module docstring); returns run.json's content.
    One line per task goes to `log` (default: this module's logger at INFO); a progress bar counts the tasks."""
    say = log or logger.info
    out = Path(out_dir)
    (out / "tasks").mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    rows: list[dict[str, Any]] = []
    bar = progress_bar(list(tasks), desc=system_name, unit="task")
    for name in bar:
        bar.set_postfix_str(name)
        task = get_task(name)
        done = out / "tasks" / f"{name}.json"
        sample = {"split": split, "max_per_task": max_per_task, "seed": seed}
        if resume and done.exists():
            row = json.loads(done.read_text())
            # only a task scored on the same examples is kept
            if row.get("sample") == sample:
                rows.append(row)
                continue
            say(f"[{system_name}] {name}: redone (stored run used {row.get('sample')})")
        examples = sample_examples(name, split, max_per_task, seed)
        logger.debug("[%s] %s: %d %s examples", system_name, name, len(examples), split)
        if not examples:
            raise SeqChatInputError(f"task '{name}' has no {split} examples")
        t0 = time.perf_counter()
        result = system(name, examples)
        seconds = time.perf_counter() - t0
        if len(result.predictions) != len(examples):
            raise RuntimeError(
                f"{system_name} returned {len(result.predictions)} predictions for {len(examples)} examples"
            )
        preds = [p.prediction for p in result.predictions]
        truths = [e.target for e in examples]
        metrics = score_task(name, truths, preds, result.p_positive)
        metrics["parse_rate"] = 1 - metrics["n_unparsed"] / max(1, metrics["n"])
        if result.free_predictions is not None:
            free = score_task(name, truths, result.free_predictions)
            metrics.update({f"free_{k}": v for k, v in free.items() if k in metric_names(task) or k == "n_unparsed"})
            metrics["free_parse_rate"] = 1 - free["n_unparsed"] / max(1, free["n"])
        metrics.update(result.metrics)
        if result.p_positive is not None and "p_positive" not in result.columns:
            result.columns["p_positive"] = list(result.p_positive)
        write_predictions(out / "predictions" / f"{name}.csv", examples, result)
        if plots:
            plot_task(out / "plots", task, [e.target for e in examples], preds, title=f"{system_name}: {name}")
        row = {"task": name, "sample": sample, "metrics": metrics, "seconds": seconds,
               "examples_per_s": len(examples) / max(seconds, 1e-9)}  # fmt: skip
        done.write_text(json.dumps(row, indent=1, default=str))
        rows.append(row)
        main = metrics.get(task.metric, float("nan"))
        say(f"[{system_name}] {name}: {task.metric} {_fmt(main)}  "
            f"n={metrics['n']} unparsed={metrics['n_unparsed']}  "
            f"{row['examples_per_s']:.2f} ex/s")  # fmt: skip
    with open(out / "metrics.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["system", "task", "group", "task_type", "metric", "value"])
        w.writerows(_long_rows(system_name, rows))
    (out / "results.md").write_text(_results_table(system_name, rows))
    n = sum(r["metrics"]["n"] for r in rows)
    seconds = sum(r["seconds"] for r in rows)
    run = {
        "system": system_name,
        "command": command or " ".join(sys.argv),
        **git_state(),
        "data_dir": str(data_dir()),
        "data_version": data_version(),
        "split": split,
        "seed": seed,
        "max_per_task": max_per_task,
        "sampling": sampling_note(max_per_task, seed),
        "tasks": list(tasks),
        "config": dict(config or {}),
        "versions": versions(),
        "started": started,
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "examples": n,
        "seconds": seconds,
        "examples_per_s": n / max(seconds, 1e-9),
        "parse_failures": {r["task"]: r["metrics"]["n_unparsed"] for r in rows},
    }
    (out / "run.json").write_text(json.dumps(run, indent=1, default=str))
    return run


def load_run(run_dir: str | Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A run folder's run.json and its per-task rows."""
    d = Path(run_dir)
    if not (d / "run.json").exists():
        raise SeqChatInputError(f"'{d}' is not a benchmark run folder (no run.json)")
    rows = {p.stem: json.loads(p.read_text()) for p in sorted((d / "tasks").glob("*.json"))}
    return json.loads((d / "run.json").read_text()), rows
