"""Supervised multi-task encoder stage: one encoder, mean pooling, a linear head per task, tasks sampled uniformly.

A stage between masked-LM pretraining and instruction tuning (Biology-Instructions trains in stages). On a
CPU budget the instruction-tuning loss reaches the encoder only through the frozen 135M decoder, at about
one conversation per second; this stage teaches the encoder the tasks' sequence features at hundreds of
sequences per second, so instruction tuning only has to learn to read them out in English. It uses the
training splits only (the same examples instruction tuning sees), never valid or test.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from seqchat.data.records import Example
from seqchat.data.sampling import sample_examples
from seqchat.errors import SeqChatInputError
from seqchat.evaluation.specialist import SPECIALIST_TYPES
from seqchat.modeling.config import EncoderConfig
from seqchat.modeling.encoders import SequenceEncoder, build_encoder_model, mean_pooled
from seqchat.modeling.model import untied
from seqchat.tasks.predict import class_keys
from seqchat.tasks.registry import TASKS, get_task


class MultitaskEncoder(nn.Module):
    """A sequence encoder shared by every task, with one linear head per task."""

    def __init__(self, encoder: SequenceEncoder, outputs: dict[str, int], max_windows: int, max_residues: int | None):
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict({t: nn.Linear(encoder.hidden_size, n) for t, n in outputs.items()})
        self.max_windows = max_windows
        self.max_residues = max_residues

    def forward(self, task: str, residues: list[str]) -> torch.Tensor:
        """Head outputs (batch, n_out) of one task."""
        dev = self.heads[task].weight.device
        return self.heads[task](mean_pooled(self.encoder, residues, self.max_windows, self.max_residues, dev))


def single_sequence_tasks(modalities: list[str]) -> list[str]:
    """Registry tasks with one input sequence of these modalities and a class or number to predict."""
    return [t.name for t in TASKS.values()
            if not t.is_pair and t.modality in modalities and t.task_type in SPECIALIST_TYPES]  # fmt: skip


def pair_tasks(modalities: list[str]) -> list[str]:
    """Registry pair tasks with an input of these modalities and a class or number to predict."""
    return [t.name for t in TASKS.values()
            if t.is_pair and set(t.inputs) & set(modalities) and t.task_type in SPECIALIST_TYPES]  # fmt: skip


@dataclass
class MultitaskJob:
    """Supervised multi-task job for the training loop (seqchat.training.loop.train)."""

    model: MultitaskEncoder
    train_sets: dict[str, list[Example]]
    valid_sets: dict[str, list[Example]]
    batch_size: int
    seed: int = 0

    def __post_init__(self) -> None:
        self.tasks = sorted(self.train_sets)
        self.targets: dict[str, np.ndarray] = {}
        self.scale: dict[str, tuple[float, float]] = {}
        for t in self.tasks:
            self.targets[t], self.scale[t] = self._targets(t, self.train_sets[t])

    def _targets(self, task: str, rows: list[Example]) -> tuple[np.ndarray, tuple[float, float]]:
        if get_task(task).task_type == "regression":
            y = np.array([float(e.target) for e in rows])
            mu, sd = self.scale.get(task, (float(y.mean()), float(y.std()) or 1.0))
            return (y - mu) / sd, (mu, sd)
        keys = class_keys(task)
        return np.array([keys.index(e.target) for e in rows]), (0.0, 1.0)

    def batch(self, step: int, micro: int, rank: int, world: int) -> dict[str, Any]:
        """One task drawn uniformly (ChatNT's task sampling), then batch_size of its training examples."""
        rng = random.Random(f"{self.seed}:{step}:{micro}:{rank}:{world}")
        task = self.tasks[rng.randrange(len(self.tasks))]
        idx = [rng.randrange(len(self.train_sets[task])) for _ in range(self.batch_size)]
        return {"task": task, "idx": idx}

    def describe(self, batch: dict[str, Any]) -> list[str]:
        """Task and example indices of the batch."""
        return [f"{batch['task']}:{i}" for i in batch["idx"]]

    def _loss(
        self, model: nn.Module, task: str, rows: list[Example], y: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = model(task, [e.residues for e in rows])
        if get_task(task).task_type == "regression":
            pred = out.squeeze(-1)
            return nn.functional.mse_loss(pred.float(), torch.tensor(y, dtype=torch.float32, device=pred.device)), pred
        return nn.functional.cross_entropy(out.float(), torch.tensor(y, dtype=torch.long, device=out.device)), out

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
        """Cross-entropy (classes) or MSE on the standardised target (regression)."""
        t, idx = batch["task"], batch["idx"]
        loss, _ = self._loss(model, t, [self.train_sets[t][i] for i in idx], self.targets[t][idx])
        return loss, len(idx)

    @torch.no_grad()
    def validate(self, model: nn.Module) -> dict[str, float]:
        """Per task on the validation sample: accuracy (classes) or Pearson r (regression)."""
        model.eval()
        out: dict[str, float] = {}
        for t in self.tasks:
            rows = self.valid_sets[t]
            if not rows:
                continue
            y, _ = self._targets(t, rows)
            preds = torch.cat(
                [self._loss(model, t, rows[i : i + 32], y[i : i + 32])[1] for i in range(0, len(rows), 32)]
            )
            if get_task(t).task_type == "regression":
                p = preds.float().cpu().numpy()
                out[f"valid_r/{t}"] = float(np.corrcoef(p, y)[0, 1]) if p.std() > 0 and y.std() > 0 else 0.0
            else:
                out[f"valid_acc/{t}"] = float((preds.argmax(-1).cpu().numpy() == y).mean())
        model.train()
        return out

    def trainable_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """Encoder and heads."""
        return untied(model.state_dict())

    def save_final(self, model: nn.Module, out_dir: Path) -> None:
        """The encoder alone, in Hugging Face format (what `init_encoders` and AutoModel load)."""
        model.encoder.model.save_pretrained(out_dir, safe_serialization=True)
        (out_dir / "multitask_tasks.txt").write_text("\n".join(self.tasks) + "\n")


def multitask_job(raw: dict[str, Any], batch_size: int, seed: int) -> MultitaskJob:
    """Assemble the job from a config's `encoder` and `tasks` sections."""
    spec = dict(raw["encoder"])
    if spec.get("init_from") and not Path(spec["init_from"]).exists():
        raise SeqChatInputError(
            f"encoder init_from '{spec['init_from']}' does not exist: run the masked-LM stage first"
        )
    tcfg = raw.get("tasks", {})
    names = tcfg.get("names") or single_sequence_tasks(tcfg.get("modalities", ["dna"]))
    for n in names:
        if get_task(n).task_type not in SPECIALIST_TYPES:
            raise SeqChatInputError(
                f"task '{n}' is {get_task(n).task_type}: the multitask stage takes {SPECIALIST_TYPES}"
            )
    max_train, max_valid = tcfg.get("max_train", 4000), tcfg.get("max_valid", 64)
    torch.manual_seed(seed)
    shared = EncoderConfig.of(spec)
    encoder = SequenceEncoder(build_encoder_model(spec), spec["tokenizer"], shared.window, shared.overlap)
    outputs = {n: 1 if get_task(n).task_type == "regression" else len(class_keys(n)) for n in names}
    model = MultitaskEncoder(encoder, outputs, int(tcfg.get("max_windows", 1)), tcfg.get("max_residues", 512))
    return MultitaskJob(
        model=model,
        train_sets={n: sample_examples(n, "train", max_train, seed) for n in names},
        valid_sets={n: sample_examples(n, "valid", max_valid, seed) for n in names},
        batch_size=batch_size,
        seed=seed,
    )
