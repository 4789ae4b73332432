"""Headline numbers with 95% intervals from benchmark run folders, `docs/benchmarks.json`, and prediction archives.

Every number is recomputed from the per-example predictions a run wrote (`predictions/{task}.csv`), so
the archive written next to the report (one gzipped CSV per system) is enough to recompute any of them.
Class tasks are scored by MCC (the headline), regression tasks and the rest by their primary metric. An
unparsed answer gets the same truth-free fill as in `score_task` (training majority class, training mean).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqchat.evaluation.benchmark import score_task, train_majority, train_mean
from seqchat.evaluation.intervals import (
    Estimate,
    class_estimate,
    excludes_zero,
    generic_estimate,
    mean_estimate,
    numeric_estimate,
    paired_difference,
)
from seqchat.tasks.predict import class_keys
from seqchat.tasks.registry import CLASS_TYPES, get_task

ARCHIVE_COLUMNS = ("task", "i", "source_id", "truth", "prediction", "parse_failed", "p_positive", "free_prediction")


@dataclass(frozen=True)
class TaskResult:
    """One system's headline metric on one task, with the free-answer column for class tasks scored by candidates."""

    metric: str
    estimate: Estimate
    parse_rate: float
    free: Estimate | None = None
    free_parse_rate: float | None = None
    # share of examples whose generated answer names the class that candidate scoring picked (issue 13)
    free_agreement: float | None = None


def headline_metric(task_name: str) -> str:
    """MCC for class tasks (the headline over classification), else the task's primary metric."""
    task = get_task(task_name)
    return "mcc" if task.task_type in CLASS_TYPES else task.metric


def typed(task_name: str, text: str) -> Any:
    """A CSV cell back as the value the run scored: class key, number, EC tuple or text; '' is None."""
    if text == "":
        return None
    task = get_task(task_name)
    if task.task_type in CLASS_TYPES:
        return {str(k): k for k in class_keys(task_name)}[text]
    if task.task_type == "regression":
        return float(text)
    if task.task_type == "multilabel":
        return tuple(text.split(";"))
    return text


def read_predictions(path: Path) -> list[dict[str, str]]:
    """The rows of a run's predictions CSV."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _class_index(task_name: str, values: list[Any]) -> list[int]:
    keys = class_keys(task_name)
    fill = train_majority(task_name)
    return [keys.index(fill if v is None else v) for v in values]


def estimate(task_name: str, truths: list[Any], preds: list[Any], seed: int = 0) -> Estimate:
    """The headline metric of one task with bootstrap replicates; unparsed predictions get the truth-free fill."""
    task = get_task(task_name)
    metric = headline_metric(task_name)
    if task.task_type in CLASS_TYPES:
        keys = class_keys(task_name)
        return class_estimate(
            task_name, _class_index(task_name, truths), _class_index(task_name, preds), len(keys), seed
        )
    if task.task_type == "regression":
        fill = train_mean(task_name)
        filled = [fill if p is None else float(p) for p in preds]
        return numeric_estimate(task_name, metric, [float(t) for t in truths], filled, seed)

    def value_of(idx: np.ndarray) -> float:
        return float(score_task(task_name, [truths[i] for i in idx], [preds[i] for i in idx])[metric])

    return generic_estimate(task_name, len(truths), value_of, seed)


def task_result(task_name: str, rows: list[dict[str, str]], seed: int = 0) -> TaskResult:
    """A task's headline (and free-answer) estimates from its prediction rows."""
    truths = [typed(task_name, r["truth"]) for r in rows]
    preds = [None if r["parse_failed"] == "1" else typed(task_name, r["prediction"]) for r in rows]
    n = max(1, len(rows))
    result = TaskResult(headline_metric(task_name), estimate(task_name, truths, preds, seed),
                        1 - sum(p is None for p in preds) / n)  # fmt: skip
    if rows and "free_prediction" in rows[0]:
        free = [typed(task_name, r["free_prediction"]) for r in rows]
        agree = sum(f is not None and f == p for f, p in zip(free, preds, strict=True)) / n
        return TaskResult(result.metric, result.estimate, result.parse_rate, estimate(task_name, truths, free, seed),
                          1 - sum(p is None for p in free) / n, agree)  # fmt: skip
    return result


def system_results(run_dir: str | Path, tasks: list[str], seed: int = 0) -> dict[str, TaskResult]:
    """Per task that the run scored: its TaskResult."""
    d = Path(run_dir) / "predictions"
    return {t: task_result(t, read_predictions(d / f"{t}.csv"), seed) for t in tasks if (d / f"{t}.csv").exists()}


def classification_mean(results: Mapping[str, TaskResult], free: bool = False) -> Estimate:
    """Mean MCC over the classification tasks, with its interval (free=True: the free-answer column)."""
    picked = [r.free if free else r.estimate for t, r in results.items() if get_task(t).task_type in CLASS_TYPES]
    return mean_estimate([e for e in picked if e is not None])


def regression_mean(results: Mapping[str, TaskResult]) -> Estimate:
    """Mean primary correlation over the regression tasks, with its interval."""
    return mean_estimate([r.estimate for t, r in results.items() if get_task(t).task_type == "regression"])


def _class_only(results: Mapping[str, TaskResult]) -> dict[str, Estimate]:
    return {t: r.estimate for t, r in results.items() if get_task(t).task_type in CLASS_TYPES}


def paired(a: Mapping[str, TaskResult], b: Mapping[str, TaskResult]) -> Estimate:
    """Mean MCC difference a − b over the classification tasks both ran, paired per example."""
    return paired_difference(_class_only(a), _class_only(b))


def ratio(a: Mapping[str, TaskResult], b: Mapping[str, TaskResult]) -> dict[str, Any]:
    """Mean MCC ratio a ÷ b over shared classification tasks; the ratio only when b's interval excludes 0."""
    both = [t for t in _class_only(a) if t in _class_only(b)]
    num = mean_estimate([a[t].estimate for t in both])
    den = mean_estimate([b[t].estimate for t in both])
    ok = excludes_zero(den.ci95) and den.value > 0
    return {"n_tasks": len(both), "numerator": num.value, "denominator": den.value, "denominator_ci95": list(den.ci95),
            "ratio": num.value / den.value if ok else None,
            "note": None if ok else "not printed: the denominator's 95% interval includes 0"}  # fmt: skip


def _num(v: float | None) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 4)


def _est(e: Estimate) -> dict[str, Any]:
    lo, hi = e.ci95
    return {"value": _num(e.value), "ci95": [_num(lo), _num(hi)]}


def benchmark_json(
    runs: Mapping[str, tuple[dict[str, Any], dict[str, Any]]], results: Mapping[str, Mapping[str, TaskResult]]
) -> dict[str, Any]:
    """The machine-readable report: provenance, per-system per-task estimates, means, paired differences, ratio."""
    shas = {run.get("git_sha") for run, _ in runs.values()}
    first = next(iter(runs.values()))[0] if runs else {}
    doc: dict[str, Any] = {
        "git_sha": next(iter(shas)) if len(shas) == 1 else sorted(s or "?" for s in shas),
        "git_dirty": any(run.get("git_dirty") for run, _ in runs.values()),
        "data_version": first.get("data_version"),
        "seed": first.get("seed"),
        "max_per_task": first.get("max_per_task"),
        "interval": "95% percentile bootstrap over test examples (1000 resamples; 200 for EC and free text), "
                    "the same resamples for every system",
        "systems": {},
    }  # fmt: skip
    for name, res in results.items():
        run = runs[name][0]
        tasks = {}
        for t, r in res.items():
            entry = {"metric": r.metric, **_est(r.estimate), "n": r.estimate.n, "parse_rate": _num(r.parse_rate)}
            auc = runs[name][1].get(t, {}).get("metrics", {}).get("auroc")
            if isinstance(auc, (int, float)):
                entry["auroc"] = _num(float(auc))
            if r.free is not None:
                entry["free_answer"] = {**_est(r.free), "parse_rate": _num(r.free_parse_rate),
                                        "agreement_with_score_mode": _num(r.free_agreement)}  # fmt: skip
            tasks[t] = entry
        summary = {"mean_mcc_classification": {**_est(m := classification_mean(res)), "n_tasks": m.n},
                   "mean_correlation_regression": {**_est(g := regression_mean(res)), "n_tasks": g.n}}  # fmt: skip
        if any(r.free is not None for r in res.values()):
            summary["mean_mcc_classification_free_answer"] = {
                **_est(f := classification_mean(res, True)), "n_tasks": f.n
            }
            binary = [r.free_agreement for t, r in res.items() if r.free_agreement is not None
                      and get_task(t).task_type == "binary"]  # fmt: skip
            if binary:
                summary["free_answer_agreement_binary"] = {"value": _num(sum(binary) / len(binary)),
                                                           "n_tasks": len(binary)}  # fmt: skip
        doc["systems"][name] = {"command": run.get("command"), "git_sha": run.get("git_sha"),
                                "mode": run.get("config", {}).get("mode"), "tasks": tasks,
                                "summary": summary}
    if "seqchat" in results:
        doc["paired_differences"] = {
            f"seqchat - {other}": {**_est(d := paired(results["seqchat"], results[other])), "n_tasks": d.n}
            for other in ("kmer", "specialist", "zeroshot") if other in results
        }  # fmt: skip
        if "specialist" in results:
            doc["ratio_seqchat_over_specialist"] = ratio(results["seqchat"], results["specialist"])
    return doc


def write_archive(run_dir: str | Path, tasks: list[str], out: str | Path) -> Path:
    """All of a run's per-example predictions in one gzipped CSV (enough to recompute every reported number)."""
    d = Path(run_dir) / "predictions"
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(ARCHIVE_COLUMNS)
    for t in tasks:
        if (d / f"{t}.csv").exists():
            for r in read_predictions(d / f"{t}.csv"):
                w.writerow([t, *(r.get(c, "") for c in ARCHIVE_COLUMNS[1:])])
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    # mtime 0: the same predictions give the same bytes
    with open(p, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
        gz.write(buf.getvalue().encode())
    return p


def write_json(doc: Mapping[str, Any], out: str | Path) -> Path:
    """Write benchmarks.json."""
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(doc, indent=1) + "\n")
    return p
