"""The specialist baseline: one pretrained sequence encoder, mean pooling and a linear head, fine-tuned per task.

This follows the Nucleotide Transformer fine-tuning protocol in its simplest form (all encoder weights
trained with the head, on a CPU budget): the encoder is the one seqchat reads sequences with (a Hugging
Face folder, or a built-in config name for tests), the embedding of a sequence is the mean of its
content-token hidden states over its first `max_residues` residues (at most `max_windows` encoder
windows; a CPU budget), and the head is a linear
layer trained with cross-entropy (classes) or mean squared error on the standardised target (regression).
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from seqchat.config import SeqChatConfig
from seqchat.data import templates as T
from seqchat.data.sources import Example
from seqchat.data.tasks import TaskSpec, get_task
from seqchat.encoders import BUILTIN_ENCODERS, SequenceEncoder, build_encoder_model
from seqchat.evaluation.benchmark import System, TaskOutput, sample_examples
from seqchat.inference import TaskPrediction, class_keys
from seqchat.tokenization import split_windows

SPECIALIST_TYPES = ("binary", "multiclass", "regression")


@dataclass
class SpecialistConfig:
    """Encoders per modality and the per-task fine-tuning budget."""

    encoders: dict[str, dict[str, Any]] = field(default_factory=lambda: dict(SeqChatConfig().encoders))
    modalities: dict[str, str] = field(default_factory=lambda: dict(SeqChatConfig().modalities))
    max_train: int | None = 2000
    epochs: float = 2.0
    max_steps: int = 50
    batch_size: int = 8
    lr_encoder: float = 5e-5
    lr_head: float = 1e-3
    weight_decay: float = 0.01
    max_windows: int = 1
    max_residues: int | None = 512
    seed: int = 0

    def pretrained(self) -> dict[str, bool]:
        """Whether each encoder starts from pretrained weights (a built-in name without `init_from` starts random)."""
        return {n: bool(e.get("init_from")) or e["source"] not in BUILTIN_ENCODERS for n, e in self.encoders.items()}

    def describe(self) -> dict[str, Any]:
        """The config as recorded in run.json."""
        return {**asdict(self), "pretrained": self.pretrained(),
                "protocol": "full fine-tuning, mean pooling over content tokens, linear head, AdamW"}  # fmt: skip


def mean_pooled(
    encoder: SequenceEncoder, residues: list[str], max_windows: int, max_residues: int | None, device: torch.device
) -> torch.Tensor:
    """(batch, hidden): mean of content-token hidden states over a sequence's first windows."""
    tok = encoder.tokenizer
    windows, owner = [], []
    for i, r in enumerate(residues):
        for w in split_windows(r[:max_residues], encoder.window, encoder.overlap)[:max_windows]:
            windows.append(tok.encode(w))
            owner.append(i)
    longest = max(len(w) for w in windows)
    ids = torch.full((len(windows), longest), tok.pad_token_id, dtype=torch.long)
    for j, w in enumerate(windows):
        ids[j, : len(w)] = torch.tensor(w)
    content = torch.ones_like(ids, dtype=torch.bool)
    for sid in tok.special_ids:
        content &= ids != sid
    hidden = encoder(ids.to(device), (ids != tok.pad_token_id).long().to(device))
    m = content.to(device).unsqueeze(-1).to(hidden.dtype)
    sums, counts = (hidden * m).sum(1), m.sum(1)
    own = torch.tensor(owner, device=device)
    pooled = torch.zeros(len(residues), hidden.shape[-1], device=device, dtype=hidden.dtype).index_add_(0, own, sums)
    n = torch.zeros(len(residues), 1, device=device, dtype=hidden.dtype).index_add_(0, own, counts)
    return pooled / n.clamp(min=1)


class Specialist(nn.Module):
    """Encoder → mean over content tokens → linear head."""

    def __init__(self, encoder: SequenceEncoder, n_out: int, max_windows: int, max_residues: int | None = None):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.hidden_size, n_out)
        self.max_windows = max_windows
        self.max_residues = max_residues

    def embed(self, residues: list[str]) -> torch.Tensor:
        """(batch, hidden) mean-pooled embeddings."""
        return mean_pooled(self.encoder, residues, self.max_windows, self.max_residues, self.head.weight.device)

    def forward(self, residues: list[str]) -> torch.Tensor:
        """Head outputs (batch, n_out)."""
        return self.head(self.embed(residues))


def _encoder(cfg: SpecialistConfig, task: TaskSpec) -> SequenceEncoder:
    spec = cfg.encoders[cfg.modalities[task.modality]]
    return SequenceEncoder(build_encoder_model(spec), spec["tokenizer"], spec["window"], spec["overlap"])


def train_specialist(task_name: str, train: list[Example], cfg: SpecialistConfig) -> tuple[Specialist, dict[str, Any]]:
    """Fine-tune encoder + head on training examples; returns the model and what the training did."""
    task = get_task(task_name)
    torch.manual_seed(cfg.seed)
    rng = random.Random(f"{cfg.seed}:{task_name}:specialist")
    regression = task.task_type == "regression"
    keys = class_keys(task_name)
    y = np.array([float(e.target) if regression else keys.index(e.target) for e in train])
    mu, sd = (float(y.mean()), float(y.std()) or 1.0) if regression else (0.0, 1.0)
    model = Specialist(_encoder(cfg, task), 1 if regression else len(keys), cfg.max_windows, cfg.max_residues)
    opt = torch.optim.AdamW(
        [{"params": model.encoder.parameters(), "lr": cfg.lr_encoder}, {"params": model.head.parameters(), "lr": cfg.lr_head}],
        weight_decay=cfg.weight_decay,
    )  # fmt: skip
    steps = max(1, min(cfg.max_steps, math.ceil(cfg.epochs * len(train) / cfg.batch_size)))
    order: list[int] = []
    losses = []
    model.train()
    for _ in range(steps):
        if len(order) < cfg.batch_size:
            fresh = list(range(len(train)))
            rng.shuffle(fresh)
            order += fresh
        idx, order = order[: cfg.batch_size], order[cfg.batch_size :]
        out = model([train[i].residues for i in idx])
        target = torch.tensor(y[idx], dtype=torch.float32 if regression else torch.long)
        loss = (nn.functional.mse_loss(out.squeeze(-1), (target - mu) / sd) if regression
                else nn.functional.cross_entropy(out, target))  # fmt: skip
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    model.target_scale = (mu, sd)  # type: ignore[attr-defined]
    tail = losses[-max(1, steps // 10) :]
    return model, {"train_n": len(train), "steps": steps, "epochs_seen": steps * cfg.batch_size / len(train),
                   "final_loss": float(np.mean(tail))}  # fmt: skip


@torch.no_grad()
def predict_specialist(model: Specialist, task_name: str, examples: list[Example], batch_size: int = 32) -> TaskOutput:
    """Test predictions of a trained specialist (class probabilities for classification)."""
    task = get_task(task_name)
    outs = torch.cat([model([e.residues for e in examples[i : i + batch_size]]) for i in range(0, len(examples), batch_size)])
    if task.task_type == "regression":
        mu, sd = model.target_scale  # type: ignore[attr-defined]
        values = (outs.squeeze(-1) * sd + mu).tolist()
        return TaskOutput([TaskPrediction(task.format_value(v), v) for v in values])
    probs = torch.softmax(outs.float(), -1).numpy()
    keys = class_keys(task_name)
    preds = []
    for e, row in zip(examples, probs, strict=True):
        best = keys[int(row.argmax())]
        preds.append(TaskPrediction(T.canonical_answers(task_name, e.meta)[best], best, dict(zip(keys, map(float, row), strict=True))))
    return TaskOutput(preds, p_positive=probs[:, 1] if task.task_type == "binary" else None)


def specialist_system(cfg: SpecialistConfig) -> System:
    """Fine-tune a fresh specialist on each task's training sample, then predict its test examples."""

    def run(task_name: str, examples: list[Example]) -> TaskOutput:
        train = sample_examples(task_name, "train", cfg.max_train, cfg.seed)
        model, info = train_specialist(task_name, train, cfg)
        out = predict_specialist(model, task_name, examples)
        out.metrics.update(info)
        return out

    return run
