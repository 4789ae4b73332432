"""Stage 1 of the feature encoder (`seqchat train-heads`): standardisation, optional positional CNN, per-task heads.

No decoder is involved. Per encoder (one featuriser and the modalities it reads), the k-mer/composition
features are standardised with statistics pooled over every task's training split; an optional positional
CNN is trained with one head per task (uniform task sampling, reverse-complement augmentation for DNA)
through the shared training loop; then one linear head per task (logistic for classes, ridge for a
standardised regression target) is fitted on the training split with its regularisation picked on the
validation split (MCC / Pearson). Every step writes its result under the output folder and is skipped when
found there, so an interrupted run resumes per task. The folder `<out>/<encoder>` is what an encoder spec
`{kind: features, init_from: <out>/<encoder>}` loads.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from sklearn.linear_model import LogisticRegression, Ridge
from torch import nn

from seqchat.data.paths import data_version
from seqchat.data.records import Example, reverse_complement
from seqchat.data.sampling import sample_examples
from seqchat.errors import SeqChatInputError
from seqchat.evaluation.metrics import mcc, pearson
from seqchat.modeling.features import (
    FeatureEncoder,
    Featuriser,
    PositionalCNN,
    mean_max_pool,
    onehot,
    save_feature_encoder,
)
from seqchat.tasks.predict import class_keys
from seqchat.tasks.registry import get_task
from seqchat.training.loop import TrainConfig, train
from seqchat.training.supervised import MultitaskJob, pair_tasks, single_sequence_tasks

log = logging.getLogger(__name__)


def _default_encoders() -> dict[str, dict[str, Any]]:
    return {
        "dna": {"featuriser": "dna", "tokenizer": "nt_6mer", "modalities": ["dna", "rna"], "reverse_complement": True},
        "protein": {"featuriser": "protein", "tokenizer": "esm_residue", "modalities": ["protein"]},
    }


@dataclass
class HeadsConfig:
    """Stage-1 settings: tasks, sample sizes, regularisation grids and the encoders' token shapes."""

    tasks: list[str] | None = None  # default: every single-sequence class/regression task of the encoders' modalities
    max_train: int | None = 5000
    max_valid: int | None = None
    # a validation split smaller than this (yeast_h3 has 39) is topped up from the training sample, at most a
    # quarter of it, so the regularisation is not picked on a handful of examples
    min_valid: int = 150
    stats_per_task: int = 200  # training sequences per task pooled for the standardisation statistics
    pca_rows: int = 4096  # of those, how many set the spectrum tokens' initial principal directions
    # logistic regression inverse L2 strengths, ridge L2 strengths (ablation: the best C often sat at 3e-4)
    c_grid: tuple[float, ...] = (0.0001, 0.0003, 0.001, 0.003, 0.01)
    alpha_grid: tuple[float, ...] = (1000.0, 10000.0, 100000.0)
    # weights tried on the positional CNN's block of head inputs: under one L2 penalty its 2C columns would
    # otherwise weigh little beside thousands of k-mer columns (the weight folds into the head afterwards)
    positional_weights: tuple[float, ...] = (1.0, 10.0, 30.0)
    hidden: int = 256
    spectrum_tokens: int = 4
    # how head tokens carry predictions (seqchat.modeling.features.HEAD_FORMATS) and how many slots they have
    # (None: the fewest that hold every head; give the same number to every encoder for a gated projector)
    head_format: str = "logits"
    head_slots: int | None = None
    # tasks asked with identical questions (same templates and fills) share one head fitted on all of their
    # data: no router can tell them apart, so a head of its own for each would be picked by chance
    merge_alike: bool = False
    # heads for pair tasks too: in each encoder, one head per pair task with an input of its modalities, fitted
    # on the sum of those inputs' features (one weight vector shared by same-modality roles) and applied by the
    # model to each sequence alone, since the encoder reads one sequence at a time
    pair_heads: bool = False
    window: int = 100_000  # the spectrum of a whole sequence, not of 512-nt windows
    seed: int = 0
    # name -> featuriser, tokenizer, modalities read, reverse_complement (DNA augmentation) and an optional
    # positional CNN ({channels, blocks, kernel, tokens, time_s, batch_size, lr}); no `cnn`: spectrum only
    encoders: dict[str, dict[str, Any]] = field(default_factory=_default_encoders)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HeadsConfig:
        """Build from a dict, rejecting unknown keys."""
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise SeqChatInputError(f"train-heads config: unknown keys {sorted(unknown)}")
        return cls(**d)

    def tasks_of(self, encoder: str) -> list[str]:
        """The tasks with an input this encoder reads (pair tasks only with `pair_heads`)."""
        mods = self.encoders[encoder]["modalities"]
        names = self.tasks if self.tasks is not None else single_sequence_tasks(mods) + pair_tasks(mods)
        return [t for t in names if roles_read(t, mods) and (self.pair_heads or not get_task(t).is_pair)]


def roles_read(task: str, modalities: Sequence[str]) -> list[int]:
    """Positions of a task's inputs whose modality is among `modalities`."""
    return [i for i, m in enumerate(get_task(task).inputs) if m in modalities]


# ---- data ------------------------------------------------------------------------------------
def targets(task: str, rows: Sequence[Example]) -> np.ndarray:
    """Class indices (in `class_keys` order) or raw float values."""
    if get_task(task).task_type == "regression":
        return np.array([float(e.target) for e in rows], dtype=np.float64)
    keys = class_keys(task)
    return np.array([keys.index(e.target) for e in rows], dtype=np.int64)


def task_examples(task: str, cfg: HeadsConfig) -> tuple[list[Example], list[Example]]:
    """A task's training sample and validation examples (a short validation split topped up from training)."""
    train = sample_examples(task, "train", cfg.max_train, cfg.seed)
    valid = sample_examples(task, "valid", cfg.max_valid, cfg.seed)
    short = cfg.min_valid - len(valid)
    if short > 0:
        rng = random.Random(f"{cfg.seed}:{task}:valid-top-up")
        moved = set(rng.sample(range(len(train)), min(short, len(train) // 4)))
        valid = valid + [train[i] for i in sorted(moved)]
        train = [e for i, e in enumerate(train) if i not in moved]
    return train, valid


def feature_statistics(featuriser: Featuriser, seqs: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and scale; a k-mer's scale is floored at a tenth of its block's mean deviation.

    Without the floor a k-mer seen in a handful of sequences gets a tiny deviation, and standardising
    would turn its few counts into the largest inputs of every head.
    """
    x = featuriser(seqs)
    mean, std = x.mean(0, dtype=np.float64), x.std(0, dtype=np.float64)
    sizes = [len(featuriser.alphabet) ** k for k in featuriser.ks] + [featuriser.composition_dim]
    scale, start = np.empty_like(std), 0
    for i, size in enumerate(sizes):
        block = std[start : start + size]
        floor = 1e-6 if i == len(sizes) - 1 else 0.1 * block.mean()
        scale[start : start + size] = np.maximum(block, max(floor, 1e-6))
        start += size
    return torch.tensor(mean, dtype=torch.float32), torch.tensor(scale, dtype=torch.float32)


def role_features(encoder: FeatureEncoder, rows: Sequence[Example], roles: Sequence[int]) -> np.ndarray:
    """Head inputs of each example: one sequence's, or the sum over the pair roles this encoder reads."""
    with torch.no_grad():
        return np.sum([encoder.head_inputs([e.sequences[i] for e in rows]).numpy() for i in roles], axis=0)


# ---- heads -----------------------------------------------------------------------------------
@dataclass
class HeadFit:
    """One task's fitted linear head and how it was chosen."""

    weight: np.ndarray  # (outputs, features)
    bias: np.ndarray  # (outputs,)
    choice: float  # the regularisation picked on validation
    metric: str
    valid: float
    target_mean: float = 0.0
    target_std: float = 1.0
    positional_weight: float | None = None


def _logistic(x: np.ndarray, y: np.ndarray, c: float, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    model = LogisticRegression(C=c, max_iter=500, tol=1e-3).fit(x, y)
    if n_classes == 2:
        return model.coef_.astype(np.float32), model.intercept_.astype(np.float32)
    # a class absent from the training sample keeps a head row that is never the argmax
    w = np.zeros((n_classes, x.shape[1]), dtype=np.float32)
    b = np.full(n_classes, -30.0, dtype=np.float32)
    w[model.classes_], b[model.classes_] = model.coef_, model.intercept_
    return w, b


def _predict_class(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    z = x @ w.T + b
    return (z[:, 0] > 0).astype(np.int64) if w.shape[0] == 1 else z.argmax(1)


def fit_head(
    x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray, task: str, cfg: HeadsConfig, split: int | None = None
) -> HeadFit:
    """Fit a task's head on training features for every grid value; keep the best on validation.

    With `split`, columns from `split` on (the positional block) are also tried at each of
    `cfg.positional_weights`; the chosen weight is folded into the returned head.
    """
    if split is not None and split < x.shape[1]:
        fits = []
        for w in cfg.positional_weights:
            scale = np.ones(x.shape[1], dtype=x.dtype)
            scale[split:] = w
            fit = fit_head(x * scale, y, xv * scale, yv, task, cfg)
            fit.weight = fit.weight * scale
            fit.positional_weight = w
            fits.append(fit)
        return max(fits, key=lambda f: f.valid)
    best: HeadFit | None = None
    if get_task(task).task_type == "regression":
        mu, sd = float(y.mean()), float(y.std()) or 1.0
        for alpha in cfg.alpha_grid:
            model = Ridge(alpha=alpha, solver="lsqr", tol=1e-4).fit(x, (y - mu) / sd)
            w, b = model.coef_.astype(np.float32)[None], np.atleast_1d(model.intercept_).astype(np.float32)
            r = pearson(yv, xv @ w[0] + b[0]) if len(yv) > 1 else float("nan")
            if best is None or r > best.valid:
                best = HeadFit(w, b, alpha, "pearson", r, mu, sd)
    else:
        n_classes = len(class_keys(task))
        if len(np.unique(y)) < 2:
            raise SeqChatInputError(f"task '{task}': the training sample holds one class only; raise max_train")
        for c in cfg.c_grid:
            w, b = _logistic(x, y, c, n_classes)
            score = mcc(yv, _predict_class(xv, w, b))
            if best is None or score > best.valid:
                best = HeadFit(w, b, c, "mcc", score)
    assert best is not None
    return best


def head_score(fit: HeadFit, x: np.ndarray, y: np.ndarray, task: str) -> float:
    """A fitted head's validation figure on features `x` (Pearson for regression, MCC for classes)."""
    if get_task(task).task_type == "regression":
        return pearson(y, x @ fit.weight[0] + fit.bias[0])
    return mcc(y, _predict_class(x, fit.weight, fit.bias))


def pick_shared_head(
    encoder: FeatureEncoder, pooled: HeadFit, members: dict[str, tuple[list[Example], list[Example]]],
    roles: Sequence[int], cfg: HeadsConfig, split: int,
) -> tuple[HeadFit, dict[str, Any]]:  # fmt: skip
    """The head a group of alike tasks shares: the pooled fit or one member's own, by mean member validation.

    A router cannot tell the members apart, so the head should do best on average over their validation
    splits. When one member is nearly unlearnable (deepgene_promoter_300 at 0.08), fitting on the pooled data
    only blurs the learnable one (promoter_300_all: 0.53 pooled vs 0.73 on its own head).
    """
    kind = next(iter(members))
    feats = {t: (role_features(encoder, tr, roles), targets(kind, tr), role_features(encoder, va, roles),
                 targets(kind, va)) for t, (tr, va) in members.items()}  # fmt: skip
    candidates = {"pooled": pooled}
    for t, (x, y, xv, yv) in feats.items():
        candidates[t] = fit_head(x, y, xv, yv, kind, cfg, split)
    scores = {c: {t: head_score(fit, f[2], f[3], kind) for t, f in feats.items()} for c, fit in candidates.items()}
    best = max(scores, key=lambda c: float(np.mean(list(scores[c].values()))))
    fit = candidates[best]
    fit.valid = float(np.mean(list(scores[best].values())))
    return fit, {"shared_head": best, "valid_per_member": scores[best],
                 "candidates": {c: float(np.mean(list(v.values()))) for c, v in scores.items()}}  # fmt: skip


# ---- positional CNN --------------------------------------------------------------------------
class CNNMultitask(nn.Module):
    """A positional CNN with one linear head per task on its mean+max pooled features (MultitaskJob's model)."""

    def __init__(self, cnn: PositionalCNN, featuriser: Featuriser, outputs: dict[str, int], rc: bool):
        super().__init__()
        self.cnn, self.featuriser, self.rc = cnn, featuriser, rc
        self.heads = nn.ModuleDict({t: nn.Linear(2 * cnn.channels, n) for t, n in outputs.items()})

    def pooled(self, residues: Sequence[str]) -> torch.Tensor:
        """(n, 2C) pooled CNN features."""
        x, mask = onehot(residues, self.featuriser)
        return mean_max_pool(self.cnn(x, mask), mask)

    def forward(self, task: str, residues: list[str]) -> torch.Tensor:
        """Head outputs of one task; in training each sequence is read on a random strand."""
        if self.training and self.rc:
            flip = torch.rand(len(residues)) < 0.5
            residues = [reverse_complement(r) if f else r for r, f in zip(residues, flip.tolist(), strict=True)]
        return self.heads[task](self.pooled(residues))


class CNNJob(MultitaskJob):
    """The supervised multi-task job over the CNN; its artefact is the CNN alone."""

    def save_final(self, model: nn.Module, out_dir: Path) -> None:
        """Write the CNN's tensors."""
        out_dir.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in model.cnn.state_dict().items()}, str(out_dir / "cnn.safetensors"))


def head_outputs(task: str) -> int:
    """Outputs of a task's head: one logit (binary), one standardised value (regression) or one per class."""
    spec = get_task(task)
    return len(class_keys(task)) if spec.task_type == "multiclass" else 1


def train_cnn(
    cnn_cfg: dict[str, Any], featuriser: Featuriser, train_sets: dict[str, list[Example]], rc: bool, out_dir: Path,
    seed: int,
) -> tuple[PositionalCNN, dict[str, Any]]:  # fmt: skip
    """Train the positional CNN multitask for `time_s` seconds (resumable); return it in eval mode."""
    torch.manual_seed(seed)
    cnn = PositionalCNN(len(featuriser.alphabet), cnn_cfg.get("channels", 64), cnn_cfg.get("blocks", 3),
                        cnn_cfg.get("kernel", 9))  # fmt: skip
    final = out_dir / "final" / "cnn.safetensors"
    if final.exists():
        cnn.load_state_dict(load_file(str(final)))
        return cnn.eval(), json.loads((out_dir / "summary.json").read_text())
    # MultitaskJob trains class heads with cross-entropy: one output per class, binary included
    outputs = {t: 1 if get_task(t).task_type == "regression" else len(class_keys(t)) for t in train_sets}
    model = CNNMultitask(cnn, featuriser, outputs, rc)
    job = CNNJob(model=model, train_sets=train_sets, valid_sets={t: [] for t in train_sets},
                 batch_size=int(cnn_cfg.get("batch_size", 32)), seed=seed)  # fmt: skip
    tcfg = TrainConfig(out_dir=str(out_dir), max_steps=int(cnn_cfg.get("max_steps", 100_000)),
                       lr=cnn_cfg.get("lr", 2e-3),
                       warmup_steps=20, save_every=0, eval_every=0, seed=seed,
                       max_time_s=cnn_cfg.get("time_s", 300))
    t0 = time.process_time()
    summary = {**train(job, tcfg, resume=True), "cpu_s": time.process_time() - t0}
    job.save_final(model, out_dir / "final")
    (out_dir / "summary.json").write_text(json.dumps(summary))
    return cnn.eval(), summary


# ---- the stage ---------------------------------------------------------------------------------
def alike_groups(tasks: Sequence[str]) -> list[list[str]]:
    """Tasks grouped by their questions (template set and fills), in first-seen order; most groups hold one task."""
    groups: dict[tuple[Any, ...], list[str]] = {}
    for t in tasks:
        spec = get_task(t)
        groups.setdefault((spec.templates, tuple(sorted((spec.fills or {}).items()))), []).append(t)
    return list(groups.values())


def head_groups(cfg: HeadsConfig, tasks: Sequence[str]) -> dict[str, list[str]]:
    """Head name -> the tasks it serves: one head per task, or per group of alike tasks with `merge_alike`."""
    groups = alike_groups(tasks) if cfg.merge_alike else [[t] for t in tasks]
    return {"+".join(sorted(g)): sorted(g) for g in groups}


def _encoder_spec(cfg: HeadsConfig, name: str, heads: dict[str, list[str]]) -> dict[str, Any]:
    e = cfg.encoders[name]
    spec = {"kind": "features", "featuriser": e["featuriser"], "tokenizer": e["tokenizer"], "window": cfg.window,
            "overlap": 0, "hidden": cfg.hidden, "spectrum_tokens": cfg.spectrum_tokens,
            "heads": {h: head_outputs(ts[0]) for h, ts in heads.items()}, "head_format": cfg.head_format,
            "regression": sorted(h for h, ts in heads.items() if get_task(ts[0]).task_type == "regression"),
            "routes": {t: h for h, ts in heads.items() for t in ts if t != h}}  # fmt: skip
    if cfg.head_slots:
        spec["slots"] = cfg.head_slots
    if e.get("cnn"):
        spec["cnn"] = {k: e["cnn"][k] for k in ("channels", "blocks", "kernel", "tokens") if k in e["cnn"]}
    return spec


def _say(msg: str) -> None:
    log.info(f"[train-heads] {msg}")


def train_encoder_heads(cfg: HeadsConfig, name: str, out: Path) -> dict[str, dict[str, Any]]:
    """Stage 1 for one encoder: statistics, CNN, every task's head; writes `out` and returns per-task results."""
    groups = head_groups(cfg, cfg.tasks_of(name))
    if not groups:
        return {}
    spec = _encoder_spec(cfg, name, groups)
    encoder = FeatureEncoder(spec)
    feat = encoder.featuriser
    per_task = {t: task_examples(t, cfg) for ts in groups.values() for t in ts}
    # a shared head trains and validates on all of its tasks' examples
    splits = {h: ([e for t in ts for e in per_task[t][0]], [e for t in ts for e in per_task[t][1]])
              for h, ts in groups.items()}  # fmt: skip
    tasks = list(groups)
    train_sets = {t: tr for t, (tr, _) in splits.items()}
    stats_file = out / "statistics.safetensors"
    # a stride, not a prefix: split files are often sorted by label
    # single-sequence tasks' sequences (a pair task's first input may be of another encoder's modality); the
    # inputs pair tasks have in this encoder only where it has no single-sequence task
    mods = cfg.encoders[name]["modalities"]
    single = [t for t in tasks if not get_task(groups[t][0]).is_pair]
    pool = [s for t in single or tasks for e in train_sets[t][:: max(1, len(train_sets[t]) // cfg.stats_per_task)]
            for s in ([e.residues] if t in single else [e.sequences[i] for i in roles_read(groups[t][0], mods)])]
    if stats_file.exists():
        stats = load_file(str(stats_file))
    else:
        mean, scale = feature_statistics(feat, pool)
        x = (torch.from_numpy(feat(pool[:: max(1, len(pool) // cfg.pca_rows)])) - mean) / scale
        # the spectrum tokens start as the pooled features' whitened principal components: informative
        # before stage 2, and of unit variance like the embeddings the projector is used to
        _, sv, v = torch.pca_lowrank(x, q=min(encoder.spectrum.out_features, *x.shape), center=True, niter=2)
        proj = torch.zeros_like(encoder.spectrum.weight)
        proj[: v.shape[1]] = v.T / (sv[:, None] / max(x.shape[0] - 1, 1) ** 0.5).clamp(min=1e-6)
        stats = {"feature_mean": mean, "feature_scale": scale, "spectrum": proj, "spectrum_bias": -proj @ x.mean(0)}
        out.mkdir(parents=True, exist_ok=True)
        save_file(stats, str(stats_file))
    encoder.feature_mean.copy_(stats["feature_mean"])
    encoder.feature_scale.copy_(stats["feature_scale"])
    encoder.spectrum.weight.data.copy_(stats["spectrum"])
    encoder.spectrum.bias.data.copy_(stats["spectrum_bias"])
    if encoder.cnn is not None:
        if not feat.onehot:
            raise SeqChatInputError(
                f"encoder '{name}': the featuriser '{spec['featuriser']}' has no one-hot CNN input"
            )
        rc = bool(cfg.encoders[name].get("reverse_complement", False))
        # the CNN's heads are per single-sequence task, never shared
        cnn_sets = {t: tr for t, (tr, _) in per_task.items() if not get_task(t).is_pair}
        cnn, summary = train_cnn(cfg.encoders[name]["cnn"], feat, cnn_sets, rc, out / "cnn", cfg.seed)
        encoder.cnn.load_state_dict(cnn.state_dict())
        pos_file = out / "positional_statistics.safetensors"
        if not pos_file.exists():
            encoder.eval()
            with torch.no_grad():
                pooled = torch.cat([mean_max_pool(*encoder.positional_features(pool[i : i + 256]))
                                    for i in range(0, len(pool), 256)])  # fmt: skip
            save_file({"mean": pooled.mean(0), "scale": pooled.std(0).clamp(min=1e-6)}, str(pos_file))
        pos = load_file(str(pos_file))
        encoder.positional_mean.copy_(pos["mean"])
        encoder.positional_scale.copy_(pos["scale"])
        _say(f"{name}: CNN trained {summary.get('step')} steps, {summary.get('samples_per_s', 0):.0f} samples/s")
    encoder.eval()
    results: dict[str, dict[str, Any]] = {}
    for i, task in enumerate(tasks):
        done = out / "tasks" / f"{task}.json"
        if not done.exists():
            t0 = time.process_time()
            valid = splits[task][1]
            kind = groups[task][0]  # the members of a shared head have one task type and class set
            roles = roles_read(kind, cfg.encoders[name]["modalities"])
            x, xv = role_features(encoder, train_sets[task], roles), role_features(encoder, valid, roles)
            yv = targets(kind, valid)
            fit = fit_head(x, targets(kind, train_sets[task]), xv, yv, kind, cfg, feat.dim)
            extra: dict[str, Any] = {}
            if len(groups[task]) > 1:
                fit, extra = pick_shared_head(encoder, fit, {t: per_task[t] for t in groups[task]}, roles, cfg,
                                              feat.dim)  # fmt: skip
            done.parent.mkdir(parents=True, exist_ok=True)
            save_file({"weight": torch.from_numpy(fit.weight), "bias": torch.from_numpy(fit.bias)},
                      str(done.with_suffix(".safetensors")))  # fmt: skip
            info = {k: v for k, v in asdict(fit).items() if k not in ("weight", "bias")}
            # a member's own head, when picked, was fitted on that member's training sample alone
            n_train = (
                len(per_task[extra["shared_head"]][0])
                if extra.get("shared_head") in per_task
                else len(train_sets[task])
            )
            info.update(task=task, serves=groups[task], n_train=n_train, n_valid=len(valid),
                        cpu_s=time.process_time() - t0, **extra)  # fmt: skip
            if len(roles) > 1:
                # what the model reads: the head applied to each sequence alone
                info["valid_per_role"] = {get_task(kind).roles[r]: head_score(fit, role_features(
                    encoder, valid, [r]), yv, kind) for r in roles}  # fmt: skip
            done.write_text(json.dumps(info))
        results[task] = json.loads(done.read_text())
        head = load_file(str(done.with_suffix(".safetensors")))
        encoder.heads[task].weight.data.copy_(head["weight"])
        encoder.heads[task].bias.data.copy_(head["bias"])
        r = results[task]
        _say(f"{name} [{i + 1}/{len(tasks)}] {task}: valid {r['metric']} {r['valid']:.3f} "
             f"(reg {r['choice']:g}, {r['n_train']} train, {r['cpu_s']:.1f} CPU s)")  # fmt: skip
    save_feature_encoder(encoder, out)
    return results


def train_heads(cfg: HeadsConfig, out_dir: str | Path) -> dict[str, Any]:
    """Stage 1 for every encoder of the config; writes `<out>/<encoder>/` and `<out>/stage1.json`."""
    out = Path(out_dir)
    results = {name: train_encoder_heads(cfg, name, out / name) for name in cfg.encoders}
    summary = {"config": asdict(cfg), "data_version": data_version(), "results": results}
    (out / "stage1.json").write_text(json.dumps(summary, indent=1))
    return summary
