"""Recipes to models and jobs: YAML recipes under src/seqchat/configs/ (includes resolved), arms, builders."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

from seqchat.data.corpora import write_corpus
from seqchat.errors import SeqChatInputError
from seqchat.modeling.config import SeqChatConfig, merge_mappings, read_config_file
from seqchat.modeling.model import SeqChatForConditionalGeneration
from seqchat.modeling.sequences import iter_fasta_records
from seqchat.training.loop import TrainConfig
from seqchat.training.pretrain import pretrain_job
from seqchat.training.supervised import multitask_job


def read_yaml(path: str) -> dict[str, Any]:
    """A recipe (YAML), its `model: {include: ...}` resolved."""
    return read_config_file(path)


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
    out = merge_mappings(base, arms[arm] or {})
    train = dict(out.get("train") or {})  # a copy: the recipe's own mapping stays as read
    out["train"] = {**train, "out_dir": str(Path(train.get("out_dir", "runs/train")) / arm)}
    return out


def train_config(raw: dict[str, Any], args: argparse.Namespace):
    cfg = TrainConfig.from_dict(raw.get("train", {}))
    for key in ("out_dir", "max_steps", "stop_after_step", "max_time_s", "batch_size"):
        value = getattr(args, key, None)
        if value is not None:
            setattr(cfg, key, value)
    return cfg


def _corpus(spec: dict[str, Any], out_dir: Path) -> tuple[list[str], list[str]]:
    """Training and validation sequences of a pretraining corpus (built from shared data, cached as FASTA)."""
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
    train_seqs, valid_seqs = _corpus(raw["corpus"], Path(cfg.out_dir))
    return pretrain_job(raw["encoder"], train_seqs, valid_seqs, cfg.batch_size, cfg.seed)


def _multitask_job(raw: dict[str, Any], cfg: Any) -> Any:
    return multitask_job(raw, cfg.batch_size, cfg.seed)


# encoder training objectives, chosen by a config's `objective` key
OBJECTIVES = {"mlm": _mlm_job, "multitask": _multitask_job}


def build_model_for_training(model_cfg: dict[str, Any]):
    """The seqchat model of a training config.

    `init_encoders` starts encoders from pretrained folders; `init_from` warm-starts every other trainable
    part from a saved seqchat model (e.g. the shipped one, to continue training in a later session);
    `init_skip` lists top-level parts (e.g. `projector`) that start fresh instead (a changed projector type).
    """
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
