"""Multi-task instruction tuning: records from `seqchat data build`, sampled uniformly per task (ChatNT)
or proportionally, loss on answer tokens only, decoder frozen, encoders and projector trained."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seqchat.errors import SeqChatInputError
from seqchat.modeling.sequences import Sequence
from seqchat.tasks.templates import canonical_answers

SAMPLING = ("uniform", "proportional")


def load_records(build_dir: str | Path, split: str, tasks: list[str] | None = None,
                 max_per_task: int | None = None) -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    """Records of one split grouped by file (task, or the multi-task / cross-modal mixes)."""
    d = Path(build_dir) / split
    if not d.is_dir():
        raise SeqChatInputError(f"'{build_dir}' has no {split}/ folder: run `seqchat data build --out {build_dir}`")
    out: dict[str, list[dict[str, Any]]] = {}
    for f in sorted(d.glob("*.jsonl")):
        if tasks is not None and f.stem not in tasks:
            continue
        rows = []
        with open(f, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    rows.append(json.loads(line))
                    if max_per_task is not None and len(rows) >= max_per_task:
                        break
        if rows:
            out[f.stem] = rows
    if not out:
        raise SeqChatInputError(f"no {split} records found in '{build_dir}' for tasks {tasks}")
    return out


def record_inputs(rec: dict[str, Any]) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Messages and named sequences of one JSONL record, as the processor takes them."""
    seqs = {n: Sequence(n, s["residues"], s["modality"]) for n, s in rec["sequences"].items()}
    return rec["messages"], seqs


@dataclass
class InstructJob:
    """Instruction-tuning job over grouped records."""

    model: nn.Module
    train: dict[str, list[dict[str, Any]]]
    valid: dict[str, list[dict[str, Any]]]
    batch_size: int
    sampling: str = "uniform"
    seed: int = 0
    valid_per_task: int = 4

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLING:
            raise SeqChatInputError(f"sampling must be one of {SAMPLING}, not '{self.sampling}'")
        self._names = sorted(self.train)
        self._sizes = [len(self.train[n]) for n in self._names]

    def pick(self, step: int, micro: int, rank: int, world: int) -> list[tuple[str, int]]:
        """(task, index) pairs of one micro-batch, a pure function of the position (exact resume, per-rank data)."""
        rng = random.Random(f"{self.seed}:{step}:{micro}:{rank}:{world}")
        out = []
        for _ in range(self.batch_size):
            if self.sampling == "uniform":
                name = self._names[rng.randrange(len(self._names))]
            else:
                name = rng.choices(self._names, weights=self._sizes)[0]
            out.append((name, rng.randrange(len(self.train[name]))))
        return out

    def _process(self, recs: list[dict[str, Any]]) -> dict[str, Any]:
        msgs, seqs = zip(*(record_inputs(r) for r in recs), strict=True)
        proc = self.model.processor if hasattr(self.model, "processor") else self.model.module.processor
        return proc(list(msgs), list(seqs))

    def batch(self, step: int, micro: int, rank: int, world: int) -> dict[str, Any]:
        """Processed micro-batch (right padding, answer-only labels)."""
        picks = self.pick(step, micro, rank, world)
        recs = [self.train[n][i] for n, i in picks]
        out = self._process(recs)
        out["record_ids"] = [r["id"] for r in recs]
        # the task each sequence reference is asked about, for a routing projector's auxiliary loss
        out["route_tasks"] = [recs[row].get("task") for row in out["occurrence_rows"]]
        return out

    def route_warmup(self, steps: int, lr: float, out_dir: Path | None = None) -> dict[str, float]:
        """Train only a routing projector's question → task-head choice, with no decoder pass (seconds).

        The routing cross-entropy alone is a cheap signal, so the expensive answer-token steps that follow
        start from a router that already picks the asked task's head. Returns the first and last losses.
        """
        model = self.model
        params = [
            p
            for n, p in model.projector.named_parameters()
            if n.startswith(("word_score.", "query.", "keys.", "temperature", "ngram"))
        ]
        opt = torch.optim.AdamW(params, lr=lr)
        losses = []
        for step in range(steps):
            # offset positions: these batches are not the ones the main loop will draw
            loss = model.route_loss(self.batch(10_000_000 + step, 0, 0, 1))
            if loss is None:
                continue
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
        summary = {"steps": steps, "first_loss": losses[0] if losses else float("nan"),
                   "last_loss": sum(losses[-50:]) / max(len(losses[-50:]), 1),
                   "valid_route_accuracy": self.route_accuracy(self.valid)}  # fmt: skip
        if out_dir is not None:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            (Path(out_dir) / "route_warmup.json").write_text(json.dumps(summary, indent=1))
        return summary

    def route_accuracy(self, records: dict[str, list[dict[str, Any]]], per_task: int = 20) -> float | None:
        """Share of references (with a head for their task) whose question routes to that task's head token."""
        hits = [target == picked for _, _, target, picked in self.route_picks(records, per_task)]
        return sum(hits) / len(hits) if hits else None

    def route_picks(
        self, records: dict[str, list[dict[str, Any]]], per_task: int = 20
    ) -> list[tuple[str, str, int, int]]:
        """(task, encoder, target token, picked token) of each reference whose task has a head."""
        picks = []
        for recs in records.values():
            recs = recs[:per_task]
            if not recs:
                continue
            batch = self._process(recs)
            tasks = [recs[row].get("task") for row in batch["occurrence_rows"]]
            for choice, task in zip(self.model.route_picks(batch), tasks, strict=True):
                if choice is None or not task:
                    continue
                enc, picked = choice
                encoder = self.model.encoders[enc]
                target = encoder.route_index(task) if hasattr(encoder, "route_index") else None
                if target is not None:
                    picks.append((task, enc, target, picked))
        return picks

    def describe(self, batch: dict[str, Any]) -> list[str]:
        """Record ids of a batch."""
        return batch["record_ids"]

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
        """Mean cross-entropy over the batch's answer tokens."""
        return model(batch)["loss"], batch["input_ids"].shape[0]

    @torch.no_grad()
    def validate(self, model: nn.Module) -> dict[str, float]:
        """Answer-token loss on a fixed sample of validation records, overall and per task, plus the
        accuracy of candidate scoring on the classification records of that sample."""
        model.eval()
        out: dict[str, float] = {}
        tot, n_tok = 0.0, 0
        hits: list[float] = []
        for name in sorted(self.valid):
            recs = self.valid[name][: self.valid_per_task]
            r = model(self._process(recs))
            k = int(r["num_tokens"])
            out[f"valid_loss/{name}"] = float(r["loss"])
            tot += float(r["loss"]) * k
            n_tok += k
            acc = self._class_accuracy(model, recs)
            if acc is not None:
                out[f"valid_acc/{name}"] = acc
                hits.append(acc)
        out["valid_loss"] = tot / max(n_tok, 1)
        if hits:
            out["valid_acc"] = sum(hits) / len(hits)
        model.train()
        return out

    @staticmethod
    def _class_accuracy(model: nn.Module, recs: list[dict[str, Any]]) -> float | None:
        """Share of single-sequence classification records whose own (training-style) question gets the
        right class when one canonical answer per class is scored; None if the sample has none."""
        right = []
        for rec in recs:
            if rec.get("kind") != "single" or rec.get("task_type") not in ("binary", "multiclass"):
                continue
            answers = canonical_answers(rec["task"], rec.get("meta") or None)
            msgs, seqs = record_inputs(rec)
            prompt = model.processor(msgs[:-1], seqs, add_generation_prompt=True)
            scores = model.score(prompt, list(answers.values()))["mean_logprob"]
            right.append(list(answers)[int(scores.argmax())] == rec["target"])
        return sum(right) / len(right) if right else None

    def trainable_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """Trainable weights plus parts with no pretrained source."""
        return model.trainable_state_dict()

    def save_final(self, model: nn.Module, out_dir: Path) -> None:
        """A seqchat model folder (fp32; ship with `seqchat export`)."""
        model.save_pretrained(out_dir)
