"""Masked-LM pretraining of the small sequence encoders (Nucleotide Transformer recipe: 15% of tokens)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seqchat.modeling.config import EncoderConfig
from seqchat.modeling.encoders import BUILTIN_ENCODERS, encoder_hf_config
from seqchat.modeling.model import untied
from seqchat.modeling.tokenization import SequenceTokenizer, get_sequence_tokenizer


def mask_tokens(
    ids: torch.Tensor, tok: SequenceTokenizer, prob: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT/NT masking: choose `prob` of residue tokens; 80% → <mask>, 10% → random token, 10% kept."""
    special = torch.tensor(sorted(tok.special_ids))
    candidates = ~torch.isin(ids, special)
    chosen = (torch.rand(ids.shape, generator=generator) < prob) & candidates
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    roll = torch.rand(ids.shape, generator=generator)
    out = ids.clone()
    out[chosen & (roll < 0.8)] = tok.mask_token_id
    residue_ids = torch.tensor([i for i in range(tok.vocab_size) if i not in tok.special_ids])
    rand_tok = residue_ids[torch.randint(len(residue_ids), ids.shape, generator=generator)]
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    out[swap] = rand_tok[swap]
    return out, labels


@dataclass
class PretrainJob:
    """Masked-LM job over a list of training sequences and a held-out validation list."""

    model: nn.Module
    tokenizer: SequenceTokenizer
    train_seqs: list[str]
    valid_seqs: list[str]
    batch_size: int
    window: int
    mask_prob: float = 0.15
    seed: int = 0

    def _encode(self, seqs: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [self.tokenizer.encode(s[: self.window]) for s in seqs]
        longest = max(len(r) for r in rows)
        ids = torch.full((len(rows), longest), self.tokenizer.pad_token_id, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
        return ids, (ids != self.tokenizer.pad_token_id).long()

    def batch(self, step: int, micro: int, rank: int, world: int) -> dict[str, torch.Tensor]:
        """Random windows (with a random offset inside longer sequences) and their masking, fixed by position."""
        key = f"{self.seed}:{step}:{micro}:{rank}:{world}"
        rng = random.Random(key)
        seqs = []
        for _ in range(self.batch_size):
            s = self.train_seqs[rng.randrange(len(self.train_seqs))]
            off = rng.randrange(max(1, len(s) - self.window + 1))
            seqs.append(s[off : off + self.window])
        ids, att = self._encode(seqs)
        g = torch.Generator().manual_seed(rng.randrange(2**63))
        masked, labels = mask_tokens(ids, self.tokenizer, self.mask_prob, g)
        return {"input_ids": masked, "attention_mask": att, "labels": labels, "key": key}

    def describe(self, batch: dict[str, Any]) -> list[str]:
        """The batch's sampling key (windows are drawn from it)."""
        return [batch["key"]]

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        """Cross-entropy on the masked positions."""
        dev = next(model.parameters()).device
        out = model(**{k: batch[k].to(dev) for k in ("input_ids", "attention_mask", "labels")})
        return out.loss, batch["input_ids"].shape[0]

    @torch.no_grad()
    def validate(self, model: nn.Module) -> dict[str, float]:
        """Masked-LM loss and accuracy on fixed validation windows."""
        model.eval()
        g = torch.Generator().manual_seed(self.seed)
        losses, correct, total = [], 0, 0
        dev = next(model.parameters()).device
        for i in range(0, len(self.valid_seqs), self.batch_size):
            ids, att = self._encode([s[: self.window] for s in self.valid_seqs[i : i + self.batch_size]])
            masked, labels = mask_tokens(ids, self.tokenizer, self.mask_prob, g)
            out = model(input_ids=masked.to(dev), attention_mask=att.to(dev), labels=labels.to(dev))
            keep = labels != -100
            losses.append(float(out.loss) * int(keep.sum()))
            correct += int((out.logits.argmax(-1).cpu()[keep] == labels[keep]).sum())
            total += int(keep.sum())
        model.train()
        return {"valid_loss": sum(losses) / max(total, 1), "valid_masked_acc": correct / max(total, 1)}

    def trainable_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The whole masked-LM model (tied LM head stored once)."""
        return untied(model.state_dict())

    def save_final(self, model: nn.Module, out_dir: Path) -> None:
        """Save the encoder in Hugging Face format (AutoModel / AutoModelForMaskedLM load it)."""
        model.save_pretrained(out_dir, safe_serialization=True)


def build_mlm_model(source: str) -> nn.Module:
    """A fresh masked-LM model for a built-in encoder config (or any HF config folder/id)."""
    from transformers import AutoModelForMaskedLM

    return AutoModelForMaskedLM.from_config(encoder_hf_config({"source": source}))


def pretrain_job(spec: dict[str, Any], train_seqs: list[str], valid_seqs: list[str], batch_size: int, seed: int):
    """Assemble a PretrainJob from a pretraining config's `encoder` section."""
    source = spec["source"]
    tok_name = spec.get("tokenizer") or BUILTIN_ENCODERS[source]["tokenizer"]
    torch.manual_seed(seed)
    return PretrainJob(
        model=build_mlm_model(source),
        tokenizer=get_sequence_tokenizer(tok_name),
        train_seqs=train_seqs,
        valid_seqs=valid_seqs,
        batch_size=batch_size,
        window=int(EncoderConfig.of(spec).window),
        mask_prob=float(spec.get("mask_prob", 0.15)),
        seed=seed,
    )
