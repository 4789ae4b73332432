"""`seqchat pretrain-encoder` and `seqchat train`: recipes driven by YAML configs under configs/."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from seqchat.errors import SeqChatInputError


def _read_yaml(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise SeqChatInputError(f"config file '{p}' does not exist")
    return yaml.safe_load(p.read_text()) or {}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`base` with `over` merged in, nested mappings key by key."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def recipe_arm(raw: dict[str, Any], arm: str | None) -> dict[str, Any]:
    """One variant of a recipe with `arms:` (an ablation): its overrides merged in, out_dir/<arm> as out_dir."""
    arms = raw.get("arms") or {}
    base = {k: v for k, v in raw.items() if k != "arms"}
    if arm is None:
        if arms:
            raise SeqChatInputError(f"this recipe is an ablation: pass --arm, one of {sorted(arms)}")
        return base
    if arm not in arms:
        raise SeqChatInputError(f"arm '{arm}' is not in this recipe; choose from {sorted(arms)}")
    out = _merge(base, arms[arm] or {})
    train = dict(out.get("train") or {})  # a copy: the recipe's own mapping stays as read
    out["train"] = {**train, "out_dir": str(Path(train.get("out_dir", "runs/train")) / arm)}
    return out


def _train_cfg(raw: dict[str, Any], args: argparse.Namespace):
    from seqchat.training.loop import TrainConfig

    cfg = TrainConfig.from_dict(raw.get("train", {}))
    for key in ("out_dir", "max_steps", "stop_after_step", "max_time_s", "batch_size"):
        value = getattr(args, key, None)
        if value is not None:
            setattr(cfg, key, value)
    return cfg


def _corpus(spec: dict[str, Any], out_dir: Path) -> tuple[list[str], list[str]]:
    """Training and validation sequences of a pretraining corpus (built from shared data, cached as FASTA)."""
    from seqchat.data.corpora import write_corpus
    from seqchat.modeling.sequences import iter_fasta_records

    path = Path(spec.get("path") or out_dir / f"corpus_{spec['modality']}.fa")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_corpus(spec["modality"], path, spec.get("max_sequences"))
    # corpus record ids carry no meaning (and may repeat across sources): read residues only
    with open(path, encoding="utf-8") as fh:
        seqs = [residues.upper() for _, residues in iter_fasta_records(fh, str(path))]
    # a stable 1% of the corpus (by content hash) is held out for validation
    def held_out(s: str) -> bool:
        return int(hashlib.sha1(s.encode()).hexdigest()[:8], 16) % 100 == 0

    valid = [s for s in seqs if held_out(s)][: int(spec.get("valid_size", 256))]
    train = [s for s in seqs if not held_out(s)]
    return train, valid


def _mlm_job(raw: dict[str, Any], cfg: Any) -> Any:
    from seqchat.training.pretrain import pretrain_job

    train_seqs, valid_seqs = _corpus(raw["corpus"], Path(cfg.out_dir))
    return pretrain_job(raw["encoder"], train_seqs, valid_seqs, cfg.batch_size, cfg.seed)


def _multitask_job(raw: dict[str, Any], cfg: Any) -> Any:
    from seqchat.training.supervised import multitask_job

    return multitask_job(raw, cfg.batch_size, cfg.seed)


# encoder training objectives, chosen by a config's `objective` key
OBJECTIVES = {"mlm": _mlm_job, "multitask": _multitask_job}


def run_pretrain(args: argparse.Namespace) -> int:
    """Train one encoder: masked LM on a corpus, or the supervised multi-task stage."""
    from seqchat.training.loop import train

    raw = _read_yaml(args.config)
    objective = raw.get("objective", "mlm")
    if objective not in OBJECTIVES:
        raise SeqChatInputError(f"objective '{objective}' is not one of {sorted(OBJECTIVES)}")
    cfg = _train_cfg(raw, args)
    job = OBJECTIVES[objective](raw, cfg)
    print(json.dumps(train(job, cfg, resume=args.resume)))
    return 0


def build_model_for_training(model_cfg: dict[str, Any]):
    """The seqchat model of a training config.

    `init_encoders` starts encoders from pretrained folders; `init_from` warm-starts every other trainable
    part from a saved seqchat model (e.g. the shipped one, to continue training in a later session);
    `init_skip` lists top-level parts (e.g. `projector`) that start fresh instead (a changed projector type).
    """
    from seqchat.modeling.config import SeqChatConfig
    from seqchat.modeling.model import SeqChatForConditionalGeneration

    model_cfg = dict(model_cfg)
    init = model_cfg.pop("init_encoders", {}) or {}
    warm_start = model_cfg.pop("init_from", None)
    skip = tuple(f"{part}." for part in model_cfg.pop("init_skip", []) or [])
    if skip and not warm_start:
        raise SeqChatInputError("init_skip only applies with init_from: name the model to warm-start from")
    config = SeqChatConfig.from_dict(model_cfg)
    for name, path in init.items():
        if name not in config.encoders:
            raise SeqChatInputError(f"init_encoders names '{name}', which is not an encoder of this config")
        if not Path(path).exists():
            raise SeqChatInputError(f"pretrained encoder folder '{path}' does not exist: run seqchat pretrain-encoder")
        config.encoders[name]["init_from"] = str(path)
    model = SeqChatForConditionalGeneration(config)
    if warm_start:
        warm = SeqChatForConditionalGeneration.from_pretrained(warm_start, tokenizer=model.processor.tokenizer)
        # encoders named in init_encoders come from their folders (a newer encoder stage), not the warm start
        skip += tuple(f"encoders.{n}." for n in init)
        state = {k: v for k, v in warm.trainable_state_dict().items() if not k.startswith(skip)}
        missing = model.load_state_dict(state, strict=False).unexpected_keys
        if missing:
            raise SeqChatInputError(f"init_from '{warm_start}' does not match this config: {missing[:3]}")
    return model


def run_train(args: argparse.Namespace) -> int:
    """Instruction tuning of a seqchat model."""
    import torch

    from seqchat.training.instruct import InstructJob, load_records
    from seqchat.training.loop import latest_checkpoint, train

    raw = recipe_arm(_read_yaml(args.config), args.arm)
    cfg = _train_cfg(raw, args)
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
        print(json.dumps({"route_warmup": job.route_warmup(cfg.route_warmup_steps, cfg.route_warmup_lr, Path(cfg.out_dir))}))
    print(json.dumps(train(job, cfg, resume=args.resume)))
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="YAML recipe (see configs/)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in out_dir")
    p.add_argument("--out-dir", dest="out_dir")
    p.add_argument("--max-steps", dest="max_steps", type=int)
    p.add_argument("--stop-after-step", dest="stop_after_step", type=int, help="checkpoint and stop after this step")
    p.add_argument("--max-time-s", dest="max_time_s", type=float, help="checkpoint and stop after this many seconds")
    p.add_argument("--batch-size", dest="batch_size", type=int)


def register(sub: argparse._SubParsersAction) -> None:
    """Add `pretrain-encoder` and `train`."""
    p = sub.add_parser("pretrain-encoder", help="masked-LM pretraining of a sequence encoder")
    _common(p)
    p.set_defaults(func=run_pretrain)
    p = sub.add_parser("train", help="multi-task instruction tuning (decoder frozen)")
    _common(p)
    p.add_argument("--arm", help="the variant to train, for a recipe with `arms:` (an ablation)")
    p.set_defaults(func=run_train)
