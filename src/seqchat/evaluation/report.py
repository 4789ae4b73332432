"""docs/BENCHMARKS.md from benchmark run folders: per-task table, averages, ratio, anchors, calibration, parse
failures."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from seqchat.evaluation.ablation import render_ablation
from seqchat.evaluation.anchors import CHATNT_RATIO, GROUP_ANCHORS, TASK_ANCHORS
from seqchat.evaluation.benchmark import benchmark_tasks, load_run
from seqchat.evaluation.estimates import (
    TaskResult,
    benchmark_json,
    classification_mean,
    headline_metric,
    paired,
    ratio,
    regression_mean,
    system_results,
    write_archive,
    write_json,
)
from seqchat.evaluation.gene_report import render_report as render_gene_page
from seqchat.evaluation.intervals import Estimate
from seqchat.evaluation.tables import GENE_TASK_METRICS, cell
from seqchat.tasks.registry import TASKS, get_task

SYSTEMS = {
    "seqchat": "seqchat (multitask)", "specialist": "specialist", "kmer": "k-mer", "zeroshot": "zero-shot decoder"
}
BENCHMARK_COMMAND = "seqchat benchmark{tasks} --max-per-task {n} --runs {runs} --report {out}"
JSON_NAME = "benchmarks.json"  # written beside the report
ARCHIVE_DIR = "benchmark_predictions"  # one gzipped CSV of per-example predictions per system, beside the report
CALIBRATION_KEYS = ("auroc_raw", "auroc_calibrated", "mcc_raw", "mcc_calibrated", "ece_raw", "ece_calibrated")


def _mean(values: list[float]) -> float:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _value(rows: dict[str, Any], task: str, metric: str) -> float | None:
    row = rows.get(task)
    v = row["metrics"].get(metric) if row else None
    return float(v) if isinstance(v, (int, float)) else None


def collect(runs_dir: str | Path) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Each present system's run.json and per-task rows."""
    base = Path(runs_dir)
    return {s: load_run(base / s) for s in SYSTEMS if (base / s / "run.json").exists()}


def _runs_table(runs: dict[str, Any]) -> list[str]:
    out = ["| system | command | git SHA | data version | seed | test examples | ex/s | parse failures |",
           "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for s, (run, rows) in runs.items():
        rows = {t: r for t, r in rows.items() if t in TASKS}
        sha = (run.get("git_sha") or "?")[:10] + (" (dirty)" if run.get("git_dirty") else "")
        per = f"≤{run['max_per_task']}/task" if run.get("max_per_task") else "full test splits"
        fails = sum(r["metrics"]["n_unparsed"] for r in rows.values())
        out.append(f"| {SYSTEMS[s]} | `{run['command']}` | {sha} | {run['data_version']} | {run['seed']} | "
                   f"{run['examples']} ({per}) | {run['examples_per_s']:.2f} | {fails} |")  # fmt: skip
    return out


def _ci(e: Estimate | None) -> str:
    if e is None:
        return "–"
    lo, hi = e.ci95
    return f"{cell(e.value)} [{cell(lo)}, {cell(hi)}]"


def _task_table(runs: dict[str, Any], results: dict[str, dict[str, TaskResult]], tasks: list[str]) -> list[str]:
    present = list(runs)
    head = " | ".join(SYSTEMS[s] for s in present)
    free = "seqchat" in results and any(r.free is not None for r in results["seqchat"].values())
    extra = " | seqchat free answer (MCC) | free-answer parse rate | free answer = scored class" if free else ""
    out = [f"| task | type | metric | {head}{extra} | published (model; source; data match) |",
           "|---" * (4 + len(present) + (3 if free else 0)) + "|"]  # fmt: skip
    for t in tasks:
        task = get_task(t)
        cells = []
        for s in present:
            r = results[s].get(t)
            n_bad = runs[s][1][t]["metrics"]["n_unparsed"] if t in runs[s][1] else 0
            cells.append(_ci(r.estimate if r else None) + (f" ({n_bad} unparsed)" if n_bad else ""))
        if free:
            r = results["seqchat"].get(t)
            cells += [_ci(r.free if r else None),
                      cell(r.free_parse_rate, 2) if r and r.free is not None else "–",
                      cell(r.free_agreement, 2) if r and r.free_agreement is not None else "–"]
        a = TASK_ANCHORS.get(t)
        pub = f"{a.value:.2f} ({a.model}; {a.source}; {a.match})" if a and a.metric == task.metric else ""
        out.append(f"| {t} | {task.task_type} | {headline_metric(t)} | {' | '.join(cells)} | {pub} |")
    return out


def _summary_table(results: dict[str, dict[str, TaskResult]]) -> list[str]:
    present = list(results)
    out = [f"| | {' | '.join(SYSTEMS[s] for s in present)} |", "|---" * (1 + len(present)) + "|",
           "| tasks run | " + " | ".join(str(len(results[s])) for s in present) + " |"]  # fmt: skip
    cls = {s: classification_mean(results[s]) for s in present}
    reg = {s: regression_mean(results[s]) for s in present}
    out.append("| mean MCC, classification tasks [95% CI] (tasks) | "
               + " | ".join(f"{_ci(cls[s])} ({cls[s].n})" for s in present) + " |")  # fmt: skip
    out.append("| mean correlation, regression tasks [95% CI] (tasks) | "
               + " | ".join(f"{_ci(reg[s])} ({reg[s].n})" for s in present) + " |")  # fmt: skip
    if "seqchat" in results and any(r.free is not None for r in results["seqchat"].values()):
        f = classification_mean(results["seqchat"], free=True)
        out.append("| mean MCC of the free answers, classification tasks | "
                   + " | ".join(f"{_ci(f)} ({f.n})" if s == "seqchat" else "–" for s in present) + " |")  # fmt: skip
    return out


def _paired_lines(results: dict[str, dict[str, TaskResult]]) -> list[str]:
    if "seqchat" not in results:
        return ["Paired differences need a seqchat run."]
    out = ["| difference (mean MCC, classification tasks both ran) | value [95% CI] | tasks |", "|---|---|---|"]
    for other in ("kmer", "specialist", "zeroshot"):
        if other in results:
            d = paired(results["seqchat"], results[other])
            out.append(f"| seqchat − {SYSTEMS[other]} | {_ci(d)} | {d.n} |")
    return out


def _calibration(runs: dict[str, Any], tasks: list[str]) -> list[str]:
    if "seqchat" not in runs:
        return ["No seqchat run yet."]
    rows = runs["seqchat"][1]
    have = [t for t in tasks if t in rows and "ece_raw" in rows[t]["metrics"]]
    if not have:
        return ["The seqchat run has no calibration results (binary tasks with `--calibration-train` > 0)."]
    out = ["| task | train examples | AUROC raw | AUROC Platt | MCC raw | MCC Platt | ECE raw | ECE Platt "
           "| MCC of the free answers |",
           "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for t in have:
        m = rows[t]["metrics"]
        out.append(f"| {t} | {m.get('calibration_train_n', '')} | "
                   + " | ".join(cell(m.get(k)) for k in CALIBRATION_KEYS)
                   + f" | {cell(m.get('free_mcc', m.get('mcc')))} |")  # fmt: skip
    means = " | ".join(cell(_mean([rows[t]["metrics"].get(k) for t in have])) for k in CALIBRATION_KEYS)
    free = _mean([rows[t]["metrics"].get("free_mcc", rows[t]["metrics"].get("mcc")) for t in have])
    out.append(f"| **mean ({len(have)} tasks)** | | {means} | {cell(free)} |")
    return out


def _groups(runs: dict[str, Any]) -> list[str]:
    present = list(runs)
    out = [f"| group | tasks | metric | {' | '.join(SYSTEMS[s] for s in present)} "
           "| published (model; source; data match) |",
           "|---" * (4 + len(present)) + "|"]  # fmt: skip
    for g in GROUP_ANCHORS:
        cells = []
        for s in present:
            vals = [_value(runs[s][1], t, g.anchor.metric) for t in g.tasks]
            done = [v for v in vals if v is not None]
            note = "" if len(done) == len(vals) else f" ({len(done)}/{len(vals)} tasks)"
            cells.append(cell(_mean(done)) + note)
        a = g.anchor
        out.append(f"| {g.name} | {len(g.tasks)} | {a.metric} (mean) | {' | '.join(cells)} "
                   f"| {a.value:.4f} ({a.model}; {a.source}; {a.match}) |")
    return out


def _parse_failures(runs: dict[str, Any], tasks: list[str]) -> list[str]:
    present = [s for s in runs if s in ("seqchat", "zeroshot")]
    if not present:
        return ["No free-text system has run yet."]
    out = [
        f"| task | {' | '.join(SYSTEMS[s] + ' (unparsed / n)' for s in present)} |", "|---" * (1 + len(present)) + "|"
    ]
    totals = {s: [0, 0] for s in present}
    for t in tasks:
        cells = []
        for s in present:
            m = runs[s][1].get(t, {}).get("metrics")
            if m is None:
                cells.append("–")
                continue
            # seqchat's class tasks are scored by candidates (never unparsed): their free answers are what is parsed
            bad = m.get("free_n_unparsed", m["n_unparsed"])
            totals[s][0] += bad
            totals[s][1] += m["n"]
            cells.append(f"{bad} / {m['n']}")
        out.append(f"| {t} | {' | '.join(cells)} |")
    out.append("| **total** | " + " | ".join(f"**{a} / {b}**" for a, b in totals.values()) + " |")
    return out


def _configs(runs: dict[str, Any]) -> list[str]:
    out = []
    for s, (run, _) in runs.items():
        keep = {k: run[k] for k in ("command", "git_sha", "git_dirty", "data_dir", "data_version", "split", "seed",
                                    "max_per_task", "sampling", "versions", "started", "finished") if k in run}
        cfg = dict(run.get("config", {}))
        cfg.pop("model_config", None)  # the model folder's config.json holds it
        out += [
            f"### {SYSTEMS[s]}", "", "```json", json.dumps({**keep, "config": cfg}, indent=1, default=str), "```", ""
        ]
    return out


def _gene_section(runs: dict[str, Any], gene_json: str | Path | None, ablation: str | Path | None = None) -> list[str]:
    """Free-text and EC tasks of each system, the LoRA / pooling ablation, then the gene-function page."""
    out = ["## Gene function (GeneChat, BioTalk)", "",
           "The systems above on the free-text and EC tasks (same test subsample; BLEU is sentence BLEU with NLTK "
           "smoothing 1, METEOR with WordNet synonyms; EC levels scored hierarchically as in BioTalk).", ""]
    for task, metrics in GENE_TASK_METRICS.items():
        have = [s for s, (_, rows) in runs.items() if task in rows]
        if not have:
            continue
        out += [f"| {task} | n | {' | '.join(metrics)} |", "|---" * (2 + len(metrics)) + "|"]
        for s in have:
            rows = runs[s][1]
            n = rows[task]["metrics"].get("n", "–")
            values = " | ".join(cell(_value(rows, task, m)) for m in metrics)
            out.append(f"| {SYSTEMS[s]} | {n} | {values} |")
        out.append("")
    if ablation and Path(ablation).is_dir():
        out += ["### Ablation: LoRA vs frozen decoder, window pooling vs all tokens", "",
                "Arms of `src/seqchat/configs/train/gene_ablation.yaml` (same start, data, seed and steps; "
                "see the recipe), "
                "trained and evaluated by `make gene-ablation`.", "", *render_ablation(ablation)]  # fmt: skip
    path = Path(gene_json) if gene_json else None
    if path is None or not path.exists():
        return out + ["The gene-function page (nearest-neighbour transfer, EC retrieval, anchors, and the LoRA "
                      "/ pooling "
                      "ablation of an earlier session) is docs/gene_function.md. "
                      "The nearest-neighbour, retrieval and anchor tables come from `seqchat gene-function report "
                      "--json runs/gene_function/report.json`; pass that JSON to `seqchat report --gene-json`.",
                      ""]
    res = json.loads(path.read_text())
    page = render_gene_page(res, " ".join(res.get("command", ["seqchat gene-function report"])))
    body = page.splitlines()[1:]  # the page's own title gives way to this section's
    return out + [("#" + line) if line.startswith("#") else line for line in body] + [""]


def _calibration_n(runs: dict[str, Any]) -> str:
    cal = runs.get("seqchat", ({}, {}))[0].get("config", {}).get("calibration", {})
    return str(cal.get("train_examples_per_task", "N"))


def _ratio_line(results: dict[str, dict[str, TaskResult]]) -> str:
    chatnt = (f"ChatNT reported {CHATNT_RATIO['multitask']}/{CHATNT_RATIO['specialist']} = "
              f"{CHATNT_RATIO['multitask'] / CHATNT_RATIO['specialist']:.2f} ({CHATNT_RATIO['source']})")  # fmt: skip
    if "seqchat" not in results or "specialist" not in results:
        return f"Multitask ÷ specialist: pending (needs both runs); {chatnt}."
    r = ratio(results["seqchat"], results["specialist"])
    lo, hi = r["denominator_ci95"]
    body = (f"mean MCC over {r['n_tasks']} classification tasks, "
            f"{cell(r['numerator'])} / {cell(r['denominator'])} "
            f"(specialist 95% CI [{cell(lo)}, {cell(hi)}])")  # fmt: skip
    if r["ratio"] is None:
        return f"Multitask ÷ specialist: **not printed**, the specialist's interval includes 0 ({body}); {chatnt}."
    return f"Multitask ÷ specialist: **{cell(r['ratio'], 2)}** ({body}); {chatnt}."


def render_report(
    runs_dir: str | Path, out_path: str | Path = "docs/BENCHMARKS.md", gene_json: str | Path | None = None,
    gene_ablation: str | Path | None = None, results: dict[str, dict[str, TaskResult]] | None = None,
) -> str:
    """The markdown text of the report."""
    runs = collect(runs_dir)
    order = {n: i for i, n in enumerate(TASKS)}
    found = {t for _, rows in runs.values() for t in rows}
    tasks = sorted((t for t in found if t in TASKS), key=order.get)
    gone = sorted(found - set(tasks))  # run before a registry change; their rows cannot be described
    if results is None:
        results = {s: system_results(Path(runs_dir) / s, tasks, run.get("seed") or 0) for s, (run, _) in runs.items()}
    ns = {run.get("max_per_task") for run, _ in runs.values()}
    n = next(iter(ns)) if len(ns) == 1 else None
    ran = {t for run, _ in runs.values() for t in run.get("tasks", [])}
    # a run over a subset of the registry names it, so the command reproduces exactly these rows
    subset = (
        "" if not ran or set(benchmark_tasks("all")) <= ran else f" --tasks {','.join(t for t in TASKS if t in ran)}"
    )
    command = BENCHMARK_COMMAND.format(tasks=subset, n=n or "N", runs=runs_dir, out=out_path)
    lines = ["# Benchmarks", "",
             f"Regenerate everything (all four systems, then this page, `docs/benchmarks.json` and the prediction "
             f"archives) with `{command}`; `seqchat report --runs {runs_dir} --out {out_path}` rewrites them "
             "from the run "
             "folders alone. Every number below comes from those runs.", "",
             "How to read it: every system sees the same test examples (same `--tasks`, `--max-per-task`, `--seed`; "
             "class-stratified). seqchat's class tasks are scored by its candidate answers (ChatNT's perplexity "
             f"classifier) with a Platt model fitted on {_calibration_n(runs)} training-split examples per task; "
             "its free "
             "answers, parsed, "
             "are a second column with their parse rate. An answer that cannot be parsed becomes the training "
             "majority class (regression: the training mean) — never a value derived from the truth. Each test "
             "question is one of the task's held-out templates, picked by a hash of the sequence. Intervals are 95% "
             "bootstrap intervals over test examples; the same resamples for every system make the differences "
             "paired. A constant prediction scores a correlation of 0. Per-example predictions of every system: "
             f"`docs/benchmark_predictions/<system>.csv.gz`; run folders: `{runs_dir}/<system>/`.", ""]  # fmt: skip
    if len(ns) > 1:
        lines += [f"**Warning:** the runs used different `--max-per-task` values ({sorted(map(str, ns))}); "
                  "their numbers are not on the same examples.", ""]
    if "seqchat" in runs and not runs["seqchat"][0].get("config", {}).get("trained", True):
        lines += ["**Warning:** the seqchat run evaluated an untrained architecture (a pipeline check), "
                  "not a trained model.", ""]
    if gone:
        lines += [f"Left out (no longer in the task registry): {', '.join(gone)}.", ""]
    if "seqchat" not in runs:
        lines += ["**The seqchat (multitask) column is pending:** no trained model has been evaluated yet. Once the "
                  f"shipped model exists, `{command}` fills it in (with `--resume`, the baselines below are kept).",
                  ""]
    lines += ["## Summary", "", *_summary_table(results), "", *_paired_lines(results), "", _ratio_line(results), "",
              "## Runs", "", *_runs_table(runs), "",
              "## Per task", "", "Headline metric of each task with its 95% interval: MCC for classification, the "
              "source's metric otherwise; `–` = not run or not applicable (k-mer and specialist need a class or a "
              "number per sequence; they skip EC numbers and free text).", "",
              *_task_table(runs, results, tasks), "",
              "## Published anchors by task family", "",
              "Mean of our per-task metric over the tasks whose test sets make up the source's test set.", "",
              *_groups(runs), "", "## Calibration (seqchat, binary tasks)", "",
              "ChatNT's perplexity-based classifier: N positive and N negative answer phrasings never used in "
              "training are "
              "scored; the class means of exp(mean token log-likelihood) are read as logits; a Platt model "
              "(LogisticRegression, C=0.1, lbfgs) is fitted on a class-stratified training-split sample and applied "
              "to the "
              "test examples. ECE over 10 equal-width bins.", "",
              *_calibration(runs, tasks), "", "## Parse failures of free answers", "", *_parse_failures(runs, tasks),
              "",
              *_gene_section(runs, gene_json, gene_ablation), "## Configurations", "", *_configs(runs)]  # fmt: skip
    return "\n".join(lines)


def write_report(runs_dir: str | Path, out_path: str | Path, gene_json: str | Path | None = None,
                 gene_ablation: str | Path | None = None) -> Path:
    """Write the report, `benchmarks.json` beside it and one prediction archive per system; return the report's
    path."""
    p = Path(out_path)
    p.parent.mkdir(parents=True, exist_ok=True)
    runs = collect(runs_dir)
    tasks = [t for t in TASKS if any(t in rows for _, rows in runs.values())]
    results = {s: system_results(Path(runs_dir) / s, tasks, run.get("seed") or 0) for s, (run, _) in runs.items()}
    p.write_text(render_report(runs_dir, out_path, gene_json, gene_ablation, results), encoding="utf-8")
    write_json(benchmark_json(runs, results), p.parent / JSON_NAME)
    for s in runs:
        write_archive(Path(runs_dir) / s, tasks, p.parent / ARCHIVE_DIR / f"{s}.csv.gz")
    return p
