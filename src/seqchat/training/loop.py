"""The one training loop: AdamW, warm-up + cosine decay, clipping, accumulation, checkpoints, exact resume.

A job (masked-LM pretraining, instruction tuning) supplies the model, a deterministic batch for every
(step, micro-step, rank) and a loss; the loop owns optimisation, logging, checkpoints and scale-out through
Hugging Face accelerate (DDP across processes/nodes, gloo on CPU, bf16 autocast on GPU).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from seqchat.errors import SeqChatInputError
from seqchat.progress import progress_bar

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping settings shared by every job."""

    out_dir: str = "runs/train"
    max_steps: int = 1000
    batch_size: int = 8  # per process and micro-step
    grad_accum: int = 1
    lr: float = 3e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 50
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    save_every: int = 200
    eval_every: int = 200
    log_every: int = 10
    seed: int = 0
    mixed_precision: str = "auto"  # auto: bf16 on GPU, fp32 on CPU
    max_time_s: float | None = None  # stop with a checkpoint after this long (resumable chunks)
    stop_after_step: int | None = None  # stop with a checkpoint after this step (tests, chunked runs)
    route_warmup_steps: int = 0  # routing-loss-only steps (no decoder pass) before the loop, for routing projectors
    route_warmup_lr: float = 3e-3
    trace_data: bool = False  # write which records each rank trained on (data_trace_rank{r}.jsonl)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build from a dict, rejecting unknown keys."""
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise SeqChatInputError(f"train config: unknown keys {sorted(unknown)}")
        d = dict(d)
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)


class Job(Protocol):
    """What the loop needs from a training job."""

    model: nn.Module

    def batch(self, step: int, micro: int, rank: int, world: int) -> Any:
        """The micro-batch for this position; a pure function of its arguments (exact resume)."""

    def loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        """Mean loss of one micro-batch and its number of samples."""

    def validate(self, model: nn.Module) -> dict[str, float]:
        """Validation figures (runs on the main process)."""

    def trainable_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """Weights a checkpoint must hold."""

    def save_final(self, model: nn.Module, out_dir: Path) -> None:
        """Write the finished artefact (HF folder, seqchat model folder)."""

    def describe(self, batch: Any) -> list[str]:
        """Identifiers of the samples in a batch (data tracing)."""


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to min_lr_ratio × lr."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def _optimizer(params: list[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    # no weight decay on biases, norms and learned queries (1-D or small tables), as usual for transformers
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


# ---- checkpoints ------------------------------------------------------------------------------
def save_checkpoint(path: Path, step: int, weights: dict[str, torch.Tensor], optimizer, extra: dict) -> None:
    """Weights as safetensors; optimizer, RNG and position as a tensors-only torch file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, str(tmp / "weights.safetensors"))
    torch.save(
        {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "rng_torch": torch.get_rng_state(),
            "rng_python": random.getstate(),
            "rng_numpy": np.random.get_state(),
            "extra": extra,
        },
        tmp / "state.pt",
    )
    if path.exists():
        import shutil

        shutil.rmtree(path)
    tmp.rename(path)


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The newest complete checkpoint folder under out_dir/checkpoints."""
    found = sorted((out_dir / "checkpoints").glob("step-*"), key=lambda p: int(p.name.split("-")[1]))
    return found[-1] if found else None


def load_checkpoint(path: Path, model: nn.Module, optimizer) -> dict:
    """Restore weights, optimizer and RNG; return the saved state (step, extra)."""
    weights = load_file(str(path / "weights.safetensors"))
    missing = model.load_state_dict(weights, strict=False)
    if missing.unexpected_keys:
        raise SeqChatInputError(f"checkpoint {path} does not fit this model: {missing.unexpected_keys[:3]}")
    state = torch.load(path / "state.pt", weights_only=False)  # our own file: RNG tuples need full unpickling
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng_torch"])
    random.setstate(state["rng_python"])
    np.random.set_state(state["rng_numpy"])
    return state


# ---- the loop ---------------------------------------------------------------------------------
def _progress(total: int, initial: int, enabled: bool):
    return progress_bar(total=total, initial=initial, enabled=enabled, unit="step")


def train(job: Job, cfg: TrainConfig, resume: bool = False) -> dict[str, Any]:
    """Run (or resume) a job to cfg.max_steps; return a summary with throughput and the last losses."""
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from accelerate.utils import set_seed

    precision = cfg.mixed_precision
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_available() else "no"
    # some batches carry no protein (or no DNA): their encoder gets no gradient that step
    # cpu=True lets accelerate run multi-process DDP over gloo when no GPU is present
    acc = Accelerator(
        cpu=not torch.cuda.is_available(), mixed_precision=precision,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )  # fmt: skip
    set_seed(cfg.seed)
    out = Path(cfg.out_dir)
    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=1))
    model = job.model
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise SeqChatInputError("nothing to train: every parameter is frozen")
    optimizer = _optimizer(params, cfg)
    start = 0
    ckpt = latest_checkpoint(out) if resume else None
    if resume and ckpt is None and acc.is_main_process:
        log.warning(f"no checkpoint in {out}/checkpoints; starting from step 0")
    if ckpt is not None:
        start = load_checkpoint(ckpt, model, optimizer)["step"]
    model, optimizer = acc.prepare(model, optimizer)
    rank, world = acc.process_index, acc.num_processes

    log_path = out / "log.jsonl"
    if acc.is_main_process and start == 0 and log_path.exists():
        log_path.unlink()
    t_start = time.time()
    samples_done = 0
    bar = _progress(cfg.max_steps, start, acc.is_main_process)
    last: dict[str, Any] = {}
    step = start
    for step in range(start, cfg.max_steps):
        model.train()
        lr = lr_at(step, cfg)
        for g in optimizer.param_groups:
            g["lr"] = lr
        loss_sum, n_samples = 0.0, 0
        for micro in range(cfg.grad_accum):
            batch = job.batch(step, micro, rank, world)
            if cfg.trace_data:
                with open(out / f"data_trace_rank{rank}.jsonl", "a") as fh:
                    fh.write(json.dumps({"step": step, "micro": micro, "ids": job.describe(batch)}) + "\n")
            sync = contextlib.nullcontext() if micro == cfg.grad_accum - 1 else acc.no_sync(model)
            with sync, acc.autocast():
                loss, n = job.loss(model, batch)
                acc.backward(loss / cfg.grad_accum)
            loss_sum += float(loss.detach()) / cfg.grad_accum
            n_samples += n
        grad_norm = acc.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        # mean over processes so every rank logs the same number
        loss_all = acc.reduce(torch.tensor([loss_sum], device=acc.device), reduction="mean").item()
        samples_done += n_samples * world
        elapsed = time.time() - t_start
        last = {"step": step + 1, "loss": loss_all, "lr": lr, "grad_norm": float(grad_norm),
                "samples_per_s": samples_done / max(elapsed, 1e-9), "elapsed_s": elapsed}  # fmt: skip
        if acc.is_main_process:
            with open(log_path, "a") as fh:
                fh.write(json.dumps(last) + "\n")
            bar.set_postfix(loss=f"{loss_all:.4f}", sps=f"{last['samples_per_s']:.2f}")
            bar.update(1)
        done = step + 1
        stop = (cfg.stop_after_step is not None and done >= cfg.stop_after_step) or (
            cfg.max_time_s is not None and elapsed >= cfg.max_time_s
        )
        if cfg.eval_every and done % cfg.eval_every == 0 and acc.is_main_process:
            val = job.validate(acc.unwrap_model(model))
            with open(out / "valid.jsonl", "a") as fh:
                fh.write(json.dumps({"step": done, **val}) + "\n")
        if done == cfg.max_steps or stop or (cfg.save_every and done % cfg.save_every == 0):
            acc.wait_for_everyone()
            if acc.is_main_process:
                weights = job.trainable_state(acc.unwrap_model(model))
                save_checkpoint(out / "checkpoints" / f"step-{done:07d}", done, weights, optimizer, {"world": world})
                for old in sorted((out / "checkpoints").glob("step-*"))[:-2]:  # keep the last two
                    import shutil

                    shutil.rmtree(old)
        if stop:
            break
    bar.close()
    acc.wait_for_everyone()
    finished = last.get("step", start) >= cfg.max_steps
    if finished and acc.is_main_process:
        job.save_final(acc.unwrap_model(model), out / "final")
    digest = weights_digest(job.trainable_state(acc.unwrap_model(model)))
    acc.end_training()
    return {"finished": finished, "rank": rank, "world": world, "weights_sha1": digest, **last}


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-1 over a state dict's tensors in key order (to compare replicas)."""
    import hashlib

    h = hashlib.sha1()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().float().cpu().numpy().tobytes())
    return h.hexdigest()
