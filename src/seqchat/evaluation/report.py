"""docs/BENCHMARKS.md from benchmark run folders: per-task table, averages, ratio, anchors, calibration, parse failures."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from seqchat.data.tasks import TASKS, get_task
from seqchat.evaluation.anchors import CHATNT_RATIO, GROUP_ANCHORS, TASK_ANCHORS
from seqchat.evaluation.benchmark import load_run

SYSTEMS = {"seqchat": "seqchat (multitask)", "specialist": "specialist", "kmer": "k-mer", "zeroshot": "zero-shot decoder"}
BENCHMARK_COMMAND = "seqchat benchmark --max-per-task {n} --runs {runs} --report {out}"
CALIBRATION_KEYS = ("auroc_raw", "auroc_calibrated", "mcc_raw", "mcc_calibrated", "ece_raw", "ece_calibrated")


def _f(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


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


def _task_table(runs: dict[str, Any], tasks: list[str]) -> list[str]:
    present = list(runs)
    head = " | ".join(SYSTEMS[s] for s in present)
    out = [f"| task | type | metric | {head} | published (model; source; data match) |",
           "|---" * (4 + len(present)) + "|"]  # fmt: skip
    for t in tasks:
        task = get_task(t)
        cells = []
        for s in present:
            v = _value(runs[s][1], t, task.metric)
            n_bad = runs[s][1][t]["metrics"]["n_unparsed"] if t in runs[s][1] else 0
            cells.append(_f(v) + (f" ({n_bad} unparsed)" if n_bad else ""))
        a = TASK_ANCHORS.get(t)
        pub = f"{a.value:.2f} ({a.model}; {a.source}; {a.match})" if a and a.metric == task.metric else ""
        out.append(f"| {t} | {task.task_type} | {task.metric} | {' | '.join(cells)} | {pub} |")
    return out


def averages(runs: dict[str, Any], tasks: list[str]) -> dict[str, dict[str, Any]]:
    """Per system: mean primary metric over its tasks and over the tasks every system ran; mean MCC over class tasks."""
    common = [t for t in tasks if all(t in rows for _, rows in runs.values())]
    classes = [t for t in tasks if get_task(t).task_type in ("binary", "multiclass")]
    out: dict[str, dict[str, Any]] = {}
    for s, (_, rows) in runs.items():
        own = [t for t in tasks if t in rows]
        out[s] = {
            "n_tasks": len(own),
            "primary": _mean([_value(rows, t, get_task(t).metric) for t in own]),
            "primary_common": _mean([_value(rows, t, get_task(t).metric) for t in common]),
            "mcc_classification": _mean([_value(rows, t, "mcc") for t in classes if t in rows]),
        }
    out["_common"] = {"n_tasks": len(common)}
    return out


def ratios(runs: dict[str, Any], tasks: list[str]) -> dict[str, Any]:
    """multitask ÷ specialist on the tasks both ran: primary metric, and MCC over classification tasks (ChatNT's form)."""
    if "seqchat" not in runs or "specialist" not in runs:
        return {}
    a, b = runs["seqchat"][1], runs["specialist"][1]
    both = [t for t in tasks if t in a and t in b]
    cls = [t for t in both if get_task(t).task_type in ("binary", "multiclass")]
    prim = (_mean([_value(a, t, get_task(t).metric) for t in both]), _mean([_value(b, t, get_task(t).metric) for t in both]))
    mcc = (_mean([_value(a, t, "mcc") for t in cls]), _mean([_value(b, t, "mcc") for t in cls]))
    # a ratio over a mean at or below zero (chance) says nothing
    return {"n_primary": len(both), "primary": prim, "primary_ratio": prim[0] / prim[1] if prim[1] > 0 else float("nan"),
            "n_mcc": len(cls), "mcc": mcc, "mcc_ratio": mcc[0] / mcc[1] if mcc[1] > 0 else float("nan")}  # fmt: skip


def _calibration(runs: dict[str, Any], tasks: list[str]) -> list[str]:
    if "seqchat" not in runs:
        return ["No seqchat run yet."]
    rows = runs["seqchat"][1]
    have = [t for t in tasks if t in rows and "ece_raw" in rows[t]["metrics"]]
    if not have:
        return ["The seqchat run has no calibration results (binary tasks with `--calibration-train` > 0)."]
    out = ["| task | train examples | AUROC raw | AUROC Platt | MCC raw | MCC Platt | ECE raw | ECE Platt | MCC of the free answers |",
           "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for t in have:
        m = rows[t]["metrics"]
        out.append(f"| {t} | {m.get('calibration_train_n', '')} | " + " | ".join(_f(m.get(k)) for k in CALIBRATION_KEYS)
                   + f" | {_f(m.get('mcc'))} |")  # fmt: skip
    means = " | ".join(_f(_mean([rows[t]["metrics"].get(k) for t in have])) for k in CALIBRATION_KEYS)
    out.append(f"| **mean ({len(have)} tasks)** | | {means} | {_f(_mean([rows[t]['metrics'].get('mcc') for t in have]))} |")
    return out


def _groups(runs: dict[str, Any]) -> list[str]:
    present = list(runs)
    out = [f"| group | tasks | metric | {' | '.join(SYSTEMS[s] for s in present)} | published (model; source; data match) |",
           "|---" * (4 + len(present)) + "|"]  # fmt: skip
    for g in GROUP_ANCHORS:
        cells = []
        for s in present:
            vals = [_value(runs[s][1], t, g.anchor.metric) for t in g.tasks]
            done = [v for v in vals if v is not None]
            cells.append(_f(_mean(done)) + ("" if len(done) == len(vals) else f" ({len(done)}/{len(vals)} tasks)"))
        a = g.anchor
        out.append(f"| {g.name} | {len(g.tasks)} | {a.metric} (mean) | {' | '.join(cells)} | {a.value:.4f} ({a.model}; {a.source}; {a.match}) |")
    return out


def _parse_failures(runs: dict[str, Any], tasks: list[str]) -> list[str]:
    present = [s for s in runs if s in ("seqchat", "zeroshot")]
    if not present:
        return ["No free-text system has run yet."]
    out = [f"| task | {' | '.join(SYSTEMS[s] + ' (unparsed / n)' for s in present)} |", "|---" * (1 + len(present)) + "|"]
    totals = {s: [0, 0] for s in present}
    for t in tasks:
        cells = []
        for s in present:
            m = runs[s][1].get(t, {}).get("metrics")
            if m is None:
                cells.append("–")
                continue
            totals[s][0] += m["n_unparsed"]
            totals[s][1] += m["n"]
            cells.append(f"{m['n_unparsed']} / {m['n']}")
        out.append(f"| {t} | {' | '.join(cells)} |")
    out.append("| **total** | " + " | ".join(f"**{a} / {b}**" for a, b in totals.values()) + " |")
    return out


def _configs(runs: dict[str, Any]) -> list[str]:
    out = []
    for s, (run, _) in runs.items():
        keep = {k: run[k] for k in ("command", "git_sha", "git_dirty", "data_dir", "data_version", "split", "seed",
                                    "max_per_task", "sampling", "versions", "started", "finished") if k in run}  # fmt: skip
        cfg = dict(run.get("config", {}))
        cfg.pop("model_config", None)  # the model folder's config.json holds it
        out += [f"### {SYSTEMS[s]}", "", "```json", json.dumps({**keep, "config": cfg}, indent=1, default=str), "```", ""]
    return out


GENE_TASK_METRICS = {
    "gene_description": ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l"),
    "gene_ec": ("ec_exact_match", "ec_hprecision", "ec_hrecall", "ec_hf1"),
    "protein_ec": ("fmax", "ec_exact_match", "ec_hf1"),
}


def _gene_section(runs: dict[str, Any], gene_json: str | Path | None, ablation: str | Path | None = None) -> list[str]:
    """Free-text and EC tasks of each system, the LoRA / pooling ablation, then the gene-function page."""
    from seqchat.evaluation.ablation import render_ablation
    from seqchat.evaluation.gene_report import render_report as render_gene_page

    out = ["## Gene function (GeneChat, BioTalk)", "",
           "The systems above on the free-text and EC tasks (same test subsample; BLEU is sentence BLEU with NLTK "
           "smoothing 1, METEOR with WordNet synonyms; EC levels scored hierarchically as in BioTalk).", ""]  # fmt: skip
    for task, metrics in GENE_TASK_METRICS.items():
        have = [s for s, (_, rows) in runs.items() if task in rows]
        if not have:
            continue
        out += [f"| {task} | n | {' | '.join(metrics)} |", "|---" * (2 + len(metrics)) + "|"]
        for s in have:
            rows = runs[s][1]
            n = rows[task]["metrics"].get("n", "–")
            out.append(f"| {SYSTEMS[s]} | {n} | " + " | ".join(_f(_value(rows, task, m)) for m in metrics) + " |")
        out.append("")
    if ablation:
        out += ["### Ablation: LoRA vs frozen decoder, window pooling vs all tokens", "",
                "Arms of `configs/train/gene_ablation.yaml` (same start, data, seed and steps; see the recipe), "
                "trained and evaluated by `make gene-ablation`.", "", *render_ablation(ablation)]  # fmt: skip
    path = Path(gene_json) if gene_json else None
    if path is None or not path.exists():
        return out + ["The nearest-neighbour, retrieval and anchor tables come from `seqchat gene-function report "
                      "--json runs/gene_function/report.json`; pass that JSON to `seqchat report --gene-json`.", ""]  # fmt: skip
    res = json.loads(path.read_text())
    page = render_gene_page(res, " ".join(res.get("command", ["seqchat gene-function report"])))
    body = page.splitlines()[1:]  # the page's own title gives way to this section's
    return out + [("#" + line) if line.startswith("#") else line for line in body] + [""]


def render_report(
    runs_dir: str | Path, out_path: str | Path = "docs/BENCHMARKS.md", gene_json: str | Path | None = None,
    gene_ablation: str | Path | None = None,
) -> str:
    """The markdown text of the report."""
    runs = collect(runs_dir)
    order = {n: i for i, n in enumerate(TASKS)}
    found = {t for _, rows in runs.values() for t in rows}
    tasks = sorted((t for t in found if t in TASKS), key=order.get)
    gone = sorted(found - set(tasks))  # run before a registry change; their rows cannot be described
    ns = {run.get("max_per_task") for run, _ in runs.values()}
    n = next(iter(ns)) if len(ns) == 1 else None
    command = BENCHMARK_COMMAND.format(n=n or "N", runs=runs_dir, out=out_path)
    avg = averages(runs, tasks)
    rat = ratios(runs, tasks)
    lines = ["# Benchmarks", "",
             f"Regenerate everything (all four systems, then this page) with `{command}`; `seqchat report --runs {runs_dir} "
             f"--out {out_path}` rewrites this page from the run folders alone. Every number below comes from those runs.",
             "Each system sees the same test examples (same `--tasks`, `--max-per-task`, `--seed`); unparseable answers "
             "count as wrong and are counted. Per-example predictions, plots (confusion matrices, predicted-vs-true "
             f"scatters, reliability diagrams) and `run.json` files are in `{runs_dir}/<system>/`.", ""]  # fmt: skip
    if len(ns) > 1:
        lines += [f"**Warning:** the runs used different `--max-per-task` values ({sorted(map(str, ns))}); their numbers are not on the same examples.", ""]
    if "seqchat" in runs and not runs["seqchat"][0].get("config", {}).get("trained", True):
        lines += ["**Warning:** the seqchat run evaluated an untrained architecture (a pipeline check), not a trained model.", ""]
    if gone:
        lines += [f"Left out (no longer in the task registry): {', '.join(gone)}.", ""]
    if "seqchat" not in runs:
        lines += ["**The seqchat (multitask) column is pending:** no trained model has been evaluated yet. Once the "
                  f"shipped model exists, `{command}` fills it in (with `--resume`, the baselines below are kept).", ""]  # fmt: skip
    lines += ["## Runs", "", *_runs_table(runs), "",
              "## Per task", "", "Primary metric of each task (the one its source reports); `–` = not run or not applicable "
              "(k-mer and specialist need a class or a number per sequence; they skip EC numbers and free text).", "",
              *_task_table(runs, tasks), "", "## Averages", "",
              f"| | {' | '.join(SYSTEMS[s] for s in runs)} |", "|---" * (1 + len(runs)) + "|",
              "| tasks run | " + " | ".join(str(avg[s]["n_tasks"]) for s in runs) + " |",
              "| mean primary metric, own tasks | " + " | ".join(_f(avg[s]["primary"]) for s in runs) + " |",
              f"| mean primary metric, the {avg['_common']['n_tasks']} tasks all ran | "
              + " | ".join(_f(avg[s]["primary_common"]) for s in runs) + " |",
              "| mean MCC, classification tasks | " + " | ".join(_f(avg[s]["mcc_classification"]) for s in runs) + " |",
              ""]  # fmt: skip
    chatnt = f"ChatNT reported {CHATNT_RATIO['multitask']}/{CHATNT_RATIO['specialist']} = {CHATNT_RATIO['multitask'] / CHATNT_RATIO['specialist']:.2f} ({CHATNT_RATIO['source']})"
    if rat:
        lines += [f"Multitask ÷ specialist: **{_f(rat['mcc_ratio'], 2)}** on mean MCC over {rat['n_mcc']} classification tasks "
                  f"({_f(rat['mcc'][0])} / {_f(rat['mcc'][1])}), {_f(rat['primary_ratio'], 2)} on the mean primary metric "
                  f"over {rat['n_primary']} tasks ({_f(rat['primary'][0])} / {_f(rat['primary'][1])}); {chatnt}.", ""]  # fmt: skip
    else:
        lines += [f"Multitask ÷ specialist: pending (needs both runs); {chatnt}.", ""]
    lines += ["## Published anchors by task family", "",
              "Mean of our per-task metric over the tasks whose test sets make up the source's test set.", "",
              *_groups(runs), "", "## Calibration (seqchat, binary tasks)", "",
              "ChatNT's perplexity-based classifier: N positive and N negative answer phrasings never used in training are "
              "scored; the class means of exp(mean token log-likelihood) are read as logits; a Platt model "
              "(LogisticRegression, C=0.1, lbfgs) is fitted on a class-stratified training-split sample and applied to the "
              "test examples. ECE over 10 equal-width bins.", "",
              *_calibration(runs, tasks), "", "## Parse failures", "", *_parse_failures(runs, tasks), "",
              *_gene_section(runs, gene_json, gene_ablation), "## Configurations", "", *_configs(runs), "## Closing note", "", _closing(runs, avg, rat, command), ""]  # fmt: skip
    return "\n".join(lines)


def _closing(runs: dict[str, Any], avg: dict[str, Any], rat: dict[str, Any], command: str) -> str:
    n = avg["_common"]["n_tasks"]
    parts = [f"{SYSTEMS[s]} {_f(avg[s]['primary_common'])}" for s in runs]
    text = f"Averaged over the {n} tasks every system ran (primary metric): " + ", ".join(parts) + "."
    text += " Mean MCC over classification tasks: " + ", ".join(f"{SYSTEMS[s]} {_f(avg[s]['mcc_classification'])}" for s in runs) + "."
    if rat:
        text += (f" Multitask ÷ specialist = {_f(rat['mcc_ratio'], 2)} (MCC, classification) and {_f(rat['primary_ratio'], 2)} "
                 f"(primary metric); ChatNT reported 0.77/0.69 = 1.12.")  # fmt: skip
    else:
        text += f" The multitask ÷ specialist ratio (ChatNT: 0.77/0.69 = 1.12) awaits the trained model: run `{command}`."
    return text


def write_report(runs_dir: str | Path, out_path: str | Path, gene_json: str | Path | None = None,
                 gene_ablation: str | Path | None = None) -> Path:
    """Write the report and return its path."""
    p = Path(out_path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_report(runs_dir, out_path, gene_json, gene_ablation), encoding="utf-8")
    return p
