"""`seqchat pretrain-encoder`, `seqchat train`, `seqchat train-heads` and `seqchat export`: training commands.

Recipes are YAML files under src/seqchat/configs/ (`seqchat.training.builders` turns a recipe into a model).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from seqchat.errors import SeqChatInputError
from seqchat.tasks.registry import get_task
from seqchat.training.instruct import InstructJob, load_records
from seqchat.training.loop import latest_checkpoint, train

log = logging.getLogger(__name__)


def run_pretrain(args: argparse.Namespace) -> int:
    """Train one encoder: masked LM on a corpus, or the supervised multi-task stage."""
    from seqchat.training.builders import (  # start-up: loads the model code (transformers)
        OBJECTIVES,
        read_yaml,
        train_config,
    )

    raw = read_yaml(args.config)
    objective = raw.get("objective", "mlm")
    if objective not in OBJECTIVES:
        raise SeqChatInputError(f"objective '{objective}' is not one of {sorted(OBJECTIVES)}")
    cfg = train_config(raw, args)
    job = OBJECTIVES[objective](raw, cfg)
    print(json.dumps(train(job, cfg, resume=args.resume)))
    return 0


def run_train(args: argparse.Namespace) -> int:
    """Instruction tuning of a seqchat model."""
    from seqchat.training.builders import (  # start-up: loads the model code (transformers)
        build_model_for_training,
        read_yaml,
        recipe_arm,
        train_config,
    )

    raw = recipe_arm(read_yaml(args.config), args.arm)
    cfg = train_config(raw, args)
    data = raw.get("data", {})
    torch.manual_seed(cfg.seed)
    model = build_model_for_training(raw["model"])
    job = InstructJob(
        model=model,
        train=load_records(data["build_dir"], "train", data.get("tasks"), data.get("max_per_task")),
        valid=load_records(data["build_dir"], "valid", data.get("tasks"), data.get("valid_per_task", 4)),
        batch_size=cfg.batch_size,
        sampling=data.get("sampling", "uniform"),
        seed=cfg.seed,
        valid_per_task=int(data.get("valid_per_task", 4)),
    )
    if cfg.route_warmup_steps and not (args.resume and latest_checkpoint(Path(cfg.out_dir))):
        print(json.dumps({
            "route_warmup": job.route_warmup(cfg.route_warmup_steps, cfg.route_warmup_lr, Path(cfg.out_dir))
        }))
    print(json.dumps(train(job, cfg, resume=args.resume)))
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="YAML recipe (see src/seqchat/configs/)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in out_dir")
    p.add_argument("--out-dir", dest="out_dir")
    p.add_argument("--max-steps", dest="max_steps", type=int)
    p.add_argument("--stop-after-step", dest="stop_after_step", type=int, help="checkpoint and stop after this step")
    p.add_argument("--max-time-s", dest="max_time_s", type=float, help="checkpoint and stop after this many seconds")
    p.add_argument("--batch-size", dest="batch_size", type=int)


def register(sub: argparse._SubParsersAction) -> None:
    """Add `pretrain-encoder`, `train`, `train-heads` and `export`."""
    p = sub.add_parser("pretrain-encoder", help="masked-LM pretraining of a sequence encoder")
    _common(p)
    p.set_defaults(func=run_pretrain)
    p = sub.add_parser("train", help="multi-task instruction tuning (decoder frozen)")
    _common(p)
    p.add_argument("--arm", help="the variant to train, for a recipe with `arms:` (an ablation)")
    p.set_defaults(func=run_train)
    p = sub.add_parser("train-heads", help="stage 1: fit the feature encoders' per-task heads (no decoder)")
    p.add_argument("--out", required=True, help="output folder (rerun with the same folder to resume)")
    p.add_argument("--config", help="YAML with HeadsConfig keys (see seqchat.training.heads)")
    p.add_argument("--tasks", help="comma-separated task names (default: all single-sequence class/regression tasks)")
    p.add_argument("--max-train", dest="max_train", type=int, help="training examples per task")
    p.set_defaults(func=run_train_heads)
    p = sub.add_parser("export", help="write a trained run as a shippable fp16 model folder with a model card")
    p.add_argument("--run", help="instruction-tuning run folder (holds final/ and log.jsonl); without it, only "
                   "the card's test metrics are rewritten from --eval-dir (training_summary.json of --out is kept)")
    p.add_argument("--out", required=True, help="output folder, e.g. src/seqchat/weights/seqchat-small")
    p.add_argument("--pretrain", action="append", default=[], help="MODALITY=RUN_DIR of encoder pretraining runs")
    p.add_argument("--eval-dir", help="a `seqchat eval` output folder whose table goes into the card")
    p.add_argument("--heads", help="the `seqchat train-heads` folder of stage 1 (its summary goes into the card)")
    p.set_defaults(func=run_export)


def run_train_heads(args: argparse.Namespace) -> int:
    """`seqchat train-heads`: fit (or resume) stage 1 and print each task's validation figure."""
    from seqchat.training.builders import read_yaml  # start-up: loads the model code (transformers)
    from seqchat.training.heads import (  # start-up: loads the model code (transformers)
        HeadsConfig,
        train_heads,
    )

    cfg = HeadsConfig.from_dict(read_yaml(args.config) if args.config else {})
    if args.tasks:
        cfg.tasks = [t for t in args.tasks.split(",") if t]
        for t in cfg.tasks:
            get_task(t)
    if args.max_train is not None:
        cfg.max_train = args.max_train
    train_heads(cfg, args.out)
    log.info(f"[train-heads] done: encoder folders under {args.out}; use them as "
             f"{{kind: features, init_from: {args.out}/<encoder>}}")  # fmt: skip
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Export a training run (or refresh its card's test metrics)."""
    from seqchat.training.export import export, refresh_card  # start-up: loads the model code (transformers)

    pre = {}
    for item in args.pretrain:
        m, sep, d = item.partition("=")
        if not sep:
            raise SeqChatInputError(f"--pretrain takes MODALITY=RUN_DIR, got '{item}'")
        pre[m] = Path(d)
    if args.run is None:
        if not args.eval_dir:
            raise SeqChatInputError(
                "give --run (export a training run) or --eval-dir (refresh the card's test metrics)"
            )
        refresh_card(Path(args.out), Path(args.eval_dir))
        print(json.dumps({"out": args.out, "card": "test metrics from " + args.eval_dir}))
        return 0
    info = export(Path(args.run), Path(args.out), pre, Path(args.eval_dir) if args.eval_dir else None,
                  Path(args.heads) if args.heads else None)
    print(json.dumps({"out": args.out, "weights_mb": info["weights_mb"]}))
    return 0
