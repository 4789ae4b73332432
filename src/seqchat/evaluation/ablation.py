"""The gene-function ablation table: arms of one training recipe (`arms:`), each trained and evaluated.

An arm folder (`seqchat train --config src/seqchat/configs/train/gene_ablation.yaml --arm A` writes
`runs/gene_ablation/A`) holds log.jsonl, valid.jsonl and final/ from training and eval/ from
`seqchat eval --model A/final --out A/eval`.
"""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from seqchat.data.sampling import sample_examples
from seqchat.evaluation.benchmark import load_run
from seqchat.evaluation.metrics import bleu, meteor, rouge_l
from seqchat.evaluation.tables import GENE_TASK_METRICS, cell
from seqchat.modeling.config import LoraConfig, ProjectorConfig
from seqchat.modeling.model import SeqChatForConditionalGeneration
from seqchat.modeling.projectors import projector_class
from seqchat.modeling.tokenization import window_starts

TEXT_METRICS = GENE_TASK_METRICS["gene_description"]
EC_METRICS = ("ec_exact_match", "ec_hf1")
# the two questions of the recipe: (arm, reference arm) pairs compared example by example
CONTRASTS = {"LoRA − frozen decoder": ("perceiver_lora", "perceiver_frozen"),
             "mlp pooled per window − perceiver over all tokens": ("mlp_pooled_frozen", "perceiver_frozen"),
             "mlp pooled per window − mlp over all tokens (K segments)": ("mlp_pooled_frozen", "mlp_tokens_frozen")}
PAIRED_METRICS = ("bleu1", "bleu4", "meteor", "rouge_l")


def example_scores(eval_dir: Path, task: str = "gene_description") -> dict[str, dict[str, float]]:
    """Per test example (by source id): its sentence BLEU-1/BLEU-4, METEOR and ROUGE-L, from the predictions file."""
    fns = {
        "bleu1": lambda r, p: bleu(r, p, n=1),
        "bleu4": lambda r, p: bleu(r, p, n=4),
        "meteor": meteor,
        "rouge_l": rouge_l,
    }
    out = {}
    with open(eval_dir / "predictions" / f"{task}.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            pred = None if row["parse_failed"] == "1" else row["prediction"]
            out[row["source_id"]] = {m: fns[m]([row["truth"]], [pred]) for m in PAIRED_METRICS}
    return out


def paired_difference(a: list[float], b: list[float], n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of a − b over paired examples and its 95% percentile-bootstrap interval."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
    return float(d.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def render_contrasts(ablation_dir: str | Path) -> list[str]:
    """Markdown lines: each contrast's mean paired difference per metric with its 95% bootstrap interval."""
    base = Path(ablation_dir)
    rows = []
    for label, (arm, ref) in CONTRASTS.items():
        if not all((base / x / "eval" / "predictions" / "gene_description.csv").exists() for x in (arm, ref)):
            continue
        a, b = example_scores(base / arm / "eval"), example_scores(base / ref / "eval")
        ids = sorted(set(a) & set(b))
        cells = []
        for m in PAIRED_METRICS:
            mean, lo, hi = paired_difference([a[i][m] for i in ids], [b[i][m] for i in ids])
            cells.append(f"{mean:+.3f} [{lo:+.3f}, {hi:+.3f}]")
        rows.append(f"| {label} | {len(ids)} | " + " | ".join(cells) + " |")
    if not rows:
        return []
    return ["| gene_description: difference | paired examples | " + " | ".join(PAIRED_METRICS) + " |",
            "|---" * (2 + len(PAIRED_METRICS)) + "|", *rows, "",
            "Mean per-example difference, 95% percentile bootstrap over the paired test examples (2000 resamples, "
            "seed 0); "
            "an interval that holds 0 is no measured effect.", ""]  # fmt: skip


def trainable_parameters(final: Path) -> int:
    """Parameters the arm trained (projector, LoRA adapters, unfrozen encoders), from its rebuilt model."""
    model = SeqChatForConditionalGeneration.from_pretrained(final)
    return sum(p.numel() for p in model.trainable_parameters())


def sequence_tokens(cfg: dict[str, Any], run: dict[str, Any], task: str) -> float:
    """Median prompt tokens one evaluated gene occupies under the arm's projector (K, or one per window)."""
    spec = ProjectorConfig.from_dict(cfg["projector"])
    enc = cfg["encoders"][cfg["modalities"]["dna"]]
    examples = sample_examples(task, run.get("split", "test"), run.get("max_per_task"), run.get("seed", 0))
    counts = [projector_class(spec).num_tokens_for(
                  spec, len(window_starts(len(e.residues), enc["window"], enc["overlap"])))
              for e in examples]  # fmt: skip
    return float(statistics.median(counts))


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def collect_arms(ablation_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Per finished, evaluated arm: its set-up, training figures and test metrics."""
    out: dict[str, dict[str, Any]] = {}
    done = [
        p.parent
        for p in Path(ablation_dir).glob("*/eval/run.json")
        if (p.parent.parent / "final" / "config.json").exists()
    ]
    for arm in sorted(d.parent for d in done):
        cfg = json.loads((arm / "final" / "config.json").read_text())
        run, rows = load_run(arm / "eval")
        log = _jsonl(arm / "log.jsonl")
        valid = _jsonl(arm / "valid.jsonl")
        step_s = [
            b["elapsed_s"] - a["elapsed_s"] for a, b in zip(log, log[1:], strict=False) if b["step"] == a["step"] + 1
        ]
        lora = LoraConfig.from_dict(cfg["lora"]) if cfg.get("lora") else None
        proj = ProjectorConfig.from_dict(cfg["projector"])
        targets = "/".join(lora.target_modules) if lora else ""
        out[arm.name] = {
            "projector": proj.type + (" (pooled per window)" if proj.pool_windows else ""),
            "decoder": f"LoRA r={lora.r}, α={lora.alpha} ({targets})" if lora else "frozen",
            "trainable_params": trainable_parameters(arm / "final"),
            "steps": log[-1]["step"] if log else 0,
            "median_step_s": statistics.median(step_s) if step_s else float("nan"),
            "valid_loss": valid[-1].get("valid_loss/gene_description", float("nan")) if valid else float("nan"),
            "gene_tokens": (
                sequence_tokens(cfg, run, "gene_description") if "gene_description" in rows else float("nan")
            ),
            "examples_per_s": run.get("examples_per_s", float("nan")),
            "data_version": str(run.get("data_version", "?")),
            "command": run.get("command", ""),
            "metrics": {t: rows[t]["metrics"] for t in rows},
        }  # fmt: skip
    return out


def render_ablation(ablation_dir: str | Path) -> list[str]:
    """Markdown lines: one row per arm (set-up, cost, free-text and EC metrics), then the paired contrasts."""
    arms = collect_arms(ablation_dir)
    if not arms:
        return [f"No finished ablation arm in `{ablation_dir}` yet: run `make gene-ablation`.", ""]
    head = ("| arm | projector | decoder | trainable params | steps | s/step (median) "
            "| gene tokens in prompt (median) "
            "| valid loss (gene_description) | " + " | ".join(TEXT_METRICS) + " | "
            + " | ".join(f"gene_ec {m}" for m in EC_METRICS)
            + " | eval ex/s |")  # fmt: skip
    out = [head, "|---" * (9 + len(TEXT_METRICS) + len(EC_METRICS)) + "|"]
    for name, a in arms.items():
        text = a["metrics"].get("gene_description", {})
        ec = a["metrics"].get("gene_ec", {})
        out.append(f"| {name} | {a['projector']} | {a['decoder']} | {a['trainable_params']:,} | {a['steps']} | "
                   f"{cell(a['median_step_s'], 2)} | {cell(a['gene_tokens'], 0)} | {cell(a['valid_loss'])} | "
                   + " | ".join(cell(text.get(m)) for m in TEXT_METRICS) + " | "
                   + " | ".join(cell(ec.get(m)) for m in EC_METRICS)
                   + f" | {cell(a['examples_per_s'], 2)} |")  # fmt: skip
    n = {a["metrics"].get("gene_description", {}).get("n") for a in arms.values()}
    data = {a["data_version"] for a in arms.values()}
    out += ["", f"Test examples per task: {', '.join(str(x) for x in sorted(n, key=str))} (seeded subsample, seed 0); "
            f"data version {', '.join(sorted(data))}. Validation loss: the last validation of training (4 records). "
            "s/step: median over the run; eval ex/s also depends on how long the answers are. Evaluation commands: "
            + "; ".join(f"`{a['command']}`" for a in arms.values()) + ".", ""]  # fmt: skip
    return out + render_contrasts(ablation_dir)
