"""The specialist baseline: per task, the better of two single-task models on the task's validation split.

(a) k-mer frequencies + logistic / ridge regression on the whole training split, its regularisation
chosen on the validation split (`seqchat.evaluation.systems.fit_task_kmer`).

(b) The sequence encoder seqchat ships, mean pooling and a linear head, fine-tuned on the one task: the
Nucleotide Transformer fine-tuning protocol in its simplest form (all encoder weights trained with the
head, on a CPU budget). The encoder starts from the weights of a seqchat model folder (`init_model`, the
shipped model by default in the CLI) or from `encoders` (a Hugging Face folder, or a built-in config name
for tests); the embedding of a sequence is the mean of its content-token hidden states over its first
`max_residues` residues (at most `max_windows` encoder windows); the head is a linear layer trained with
cross-entropy (classes) or mean squared error on the standardised target (regression). Training runs
with AdamW until the validation score has not improved for `patience` checks (one every `eval_every`
steps), `max_steps` or the per-task wall-clock cap `max_seconds`; the best checkpoint is restored.

The system predicts the test split with whichever of (a) and (b) scores higher on the validation split
(never the test split) and records which (`specialist_kind`) and both scores (`valid_kmer`,
`valid_encoder`) in the task's metrics.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from seqchat.data.records import Example
from seqchat.data.sampling import sample_examples
from seqchat.errors import SeqChatInputError
from seqchat.evaluation.benchmark import System, TaskOutput
from seqchat.evaluation.retrieval import load_sequence_encoder
from seqchat.evaluation.systems import example_inputs, fit_task_kmer, kmer_output, primary_score
from seqchat.modeling.config import SeqChatConfig
from seqchat.modeling.encoders import BUILTIN_ENCODERS, SequenceEncoder, build_encoder_model, mean_pooled
from seqchat.tasks import templates as T
from seqchat.tasks.predict import TaskPrediction, class_keys
from seqchat.tasks.registry import TaskSpec, get_task

SPECIALIST_TYPES = ("binary", "multiclass", "regression")
SPECIALIST_KINDS = ("kmer", "encoder")


@dataclass
class SpecialistConfig:
    """Which single-task models compete, the encoders they start from and the per-task fine-tuning budget."""

    encoders: dict[str, dict[str, Any]] = field(default_factory=lambda: dict(SeqChatConfig().encoders))
    modalities: dict[str, str] = field(default_factory=lambda: dict(SeqChatConfig().modalities))
    # a seqchat model folder whose encoder weights (and encoder configs) start the fine-tuning
    init_model: str | None = None
    kinds: tuple[str, ...] = SPECIALIST_KINDS
    max_train: int | None = None
    # validation examples (seeded, class-stratified) for early stopping and for choosing between the kinds
    # (the k-mer strength is chosen on the whole validation split, as in the k-mer system)
    max_valid: int | None = 200
    epochs: float | None = None  # an optional cap in passes over the training split
    max_steps: int = 20000
    # per-task wall-clock cap of the encoder fine-tuning, validation checks included (one last check follows the
    # cap): ~50 tasks fit in well under an hour
    max_seconds: float = 30.0
    eval_every: int = 40  # optimizer steps between validation checks
    patience: int = 4  # checks without a better validation score before stopping
    batch_size: int = 8
    lr_encoder: float = 1e-4
    lr_head: float = 1e-2
    weight_decay: float = 0.01
    max_windows: int = 1
    max_residues: int | None = 512
    seed: int = 0

    def pretrained(self) -> dict[str, bool]:
        """Whether each encoder starts from pretrained weights (a built-in name without `init_from` starts random)."""
        if self.init_model:
            return {n: True for n in self.encoders}
        return {n: bool(e.get("init_from")) or e["source"] not in BUILTIN_ENCODERS for n, e in self.encoders.items()}

    def describe(self) -> dict[str, Any]:
        """The config as recorded in run.json."""
        return {**asdict(self), "pretrained": self.pretrained(),
                "protocol": "per task, the better on the validation split of (a) k-mer logistic / ridge regression "
                            "on the training split, strength chosen on validation, and (b) the encoder fully "
                            "fine-tuned with mean pooling over content tokens and a linear head, AdamW, early "
                            "stopping on the validation primary metric, best checkpoint restored"}  # fmt: skip


class Specialist(nn.Module):
    """Encoder → mean over content tokens (one block per input sequence, concatenated) → linear head."""

    def __init__(
        self,
        encoder: SequenceEncoder,
        n_out: int,
        max_windows: int,
        max_residues: int | None = None,
        n_inputs: int = 1,
    ):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.hidden_size * n_inputs, n_out)
        self.max_windows = max_windows
        self.max_residues = max_residues
        self.n_inputs = n_inputs
        self.target_scale = (0.0, 1.0)  # regression: the training targets' mean and sd

    def embed(self, residues: list[str]) -> torch.Tensor:
        """(batch, hidden) mean-pooled embeddings."""
        return mean_pooled(self.encoder, residues, self.max_windows, self.max_residues, self.head.weight.device)

    def forward(self, inputs: Sequence[tuple[str, ...]]) -> torch.Tensor:
        """Head outputs (batch, n_out) for examples given as tuples of their input sequences."""
        return self.head(torch.cat([self.embed([row[i] for row in inputs]) for i in range(self.n_inputs)], -1))


def _encoder(cfg: SpecialistConfig, task: TaskSpec) -> SequenceEncoder:
    if cfg.init_model:
        return load_sequence_encoder(cfg.init_model, task.modality)
    spec = cfg.encoders[cfg.modalities[task.modality]]
    return SequenceEncoder(build_encoder_model(spec), spec["tokenizer"], spec["window"], spec["overlap"])


def _better(score: float, best: float) -> bool:
    # a NaN score (e.g. constant predictions) never counts as an improvement
    return not math.isnan(score) and (math.isnan(best) or score > best)


def train_specialist(
    task_name: str, train: list[Example], cfg: SpecialistConfig, valid: list[Example] | None = None
) -> tuple[Specialist, dict[str, Any]]:
    """Fine-tune encoder + head on training examples; returns the model and what the training did.

    With `valid`, the task's primary metric on it is checked every `cfg.eval_every` steps; training stops
    after `cfg.patience` checks without improvement (or at the step / time cap) and the best checkpoint
    is restored.
    """
    task = get_task(task_name)
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    rng = random.Random(f"{cfg.seed}:{task_name}:specialist")
    regression = task.task_type == "regression"
    keys = class_keys(task_name)
    y = np.array([float(e.target) if regression else keys.index(e.target) for e in train])
    mu, sd = (float(y.mean()), float(y.std()) or 1.0) if regression else (0.0, 1.0)
    inputs = [example_inputs(e) for e in train]
    model = Specialist(_encoder(cfg, task), 1 if regression else len(keys), cfg.max_windows, cfg.max_residues,
                       n_inputs=len(inputs[0]))  # fmt: skip
    model.target_scale = (mu, sd)
    opt = torch.optim.AdamW(
        [
            {"params": model.encoder.parameters(), "lr": cfg.lr_encoder},
            {"params": model.head.parameters(), "lr": cfg.lr_head},
        ],
        weight_decay=cfg.weight_decay,
    )  # fmt: skip
    steps = (
        cfg.max_steps
        if cfg.epochs is None
        else min(cfg.max_steps, math.ceil(cfg.epochs * len(train) / cfg.batch_size))
    )
    steps = max(1, steps)
    order: list[int] = []
    losses: list[float] = []
    history: list[tuple[int, float]] = []
    best, best_step, best_state, waited, stop = float("nan"), 0, None, 0, "max_steps"

    def check(step: int) -> bool:
        """Score the current weights on validation; True when patience has run out."""
        nonlocal best, best_step, best_state, waited
        score = primary_score(task_name, valid, predict_specialist(model, task_name, valid))
        model.train()
        history.append((step, score))
        if _better(score, best):
            best, best_step, waited = score, step, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        waited += 1
        return waited >= cfg.patience

    model.train()
    step = 0
    while step < steps:
        if len(order) < cfg.batch_size:
            fresh = list(range(len(train)))
            rng.shuffle(fresh)
            order += fresh
        idx, order = order[: cfg.batch_size], order[cfg.batch_size :]
        out = model([inputs[i] for i in idx])
        target = torch.tensor(y[idx], dtype=torch.float32 if regression else torch.long)
        loss = (nn.functional.mse_loss(out.squeeze(-1), (target - mu) / sd) if regression
                else nn.functional.cross_entropy(out, target))  # fmt: skip
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        step += 1
        over_time = time.perf_counter() - start > cfg.max_seconds
        if valid and (step % cfg.eval_every == 0 or step == steps or over_time) and check(step):
            stop = "patience"
            break
        if over_time:
            stop = "max_seconds"
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    tail = losses[-max(1, step // 10) :]
    return model, {"train_n": len(train), "steps": step, "epochs_seen": step * cfg.batch_size / len(train),
                   "final_loss": float(np.mean(tail)), "stopped_by": stop, "best_step": best_step if valid else step,
                   "valid_score": best, "valid_history": history,
                   "train_seconds": round(time.perf_counter() - start, 2)}  # fmt: skip


@torch.no_grad()
def predict_specialist(model: Specialist, task_name: str, examples: list[Example], batch_size: int = 32) -> TaskOutput:
    """Test predictions of a trained specialist (class probabilities for classification)."""
    task = get_task(task_name)
    rows = [example_inputs(e) for e in examples]
    outs = torch.cat([model(rows[i : i + batch_size]) for i in range(0, len(rows), batch_size)])
    if task.task_type == "regression":
        mu, sd = model.target_scale
        values = (outs.squeeze(-1) * sd + mu).tolist()
        return TaskOutput([TaskPrediction(task.format_value(v), v) for v in values])
    probs = torch.softmax(outs.float(), -1).numpy()
    keys = class_keys(task_name)
    preds = []
    for e, row in zip(examples, probs, strict=True):
        best = keys[int(row.argmax())]
        preds.append(TaskPrediction(
            T.canonical_answers(task_name, e.meta)[best], best, dict(zip(keys, map(float, row), strict=True))
        ))
    return TaskOutput(preds, p_positive=probs[:, 1] if task.task_type == "binary" else None)


def specialist_system(cfg: SpecialistConfig) -> System:
    """Per task: fit each kind in `cfg.kinds`, keep the one with the better validation score, predict the test
    examples."""
    unknown = set(cfg.kinds) - set(SPECIALIST_KINDS)
    if unknown or not cfg.kinds:
        raise SeqChatInputError(
            f"specialist kinds {sorted(unknown) or '(none)'}: use one or more of {', '.join(SPECIALIST_KINDS)}"
        )

    def run(task_name: str, examples: list[Example]) -> TaskOutput:
        train = sample_examples(task_name, "train", cfg.max_train, cfg.seed)
        valid = sample_examples(task_name, "valid", cfg.max_valid, cfg.seed)
        scores: dict[str, float] = {}
        predict: dict[str, Any] = {}
        info: dict[str, Any] = {"train_n": len(train), "valid_n": len(valid)}
        if "kmer" in cfg.kinds:
            # the same model as the k-mer system (strength chosen on the whole validation split), then scored
            # on the validation sample the encoder is scored on, so the two kinds are compared on one sample
            fit = fit_task_kmer(task_name, train, sample_examples(task_name, "valid", None))
            scores["kmer"] = primary_score(task_name, valid, kmer_output(task_name, fit.model, valid))
            predict["kmer"] = lambda: kmer_output(task_name, fit.model, examples)
            info.update(fit.describe())
        # one encoder reads every input, so a pair of two modalities (RNA + protein) has no encoder kind
        kinds = [k for k in cfg.kinds if k != "encoder" or len(set(get_task(task_name).inputs)) == 1]
        if "encoder" in kinds:
            model, enc = train_specialist(task_name, train, cfg, valid)
            scores["encoder"], predict["encoder"] = (
                enc["valid_score"], lambda: predict_specialist(model, task_name, examples)
            )
            info.update({f"encoder_{k}": v for k, v in enc.items() if k != "train_n"})
        kind = kinds[0]
        for k in kinds[1:]:
            kind = k if _better(scores[k], scores[kind]) else kind
        out = predict[kind]()
        out.metrics.update(info, specialist_kind=kind, **{f"valid_{k}": v for k, v in scores.items()})
        return out

    return run
