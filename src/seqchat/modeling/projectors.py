"""Projectors from encoder space to decoder embeddings: linear, mlp, perceiver, ChatNT's English-aware perceiver
and a question-routed readout of per-task head tokens."""

from __future__ import annotations

import abc
from typing import Any

import torch
from torch import nn

from seqchat.modeling.config import ProjectorConfig

_D = ProjectorConfig()  # the one default of every projector setting


def segment_pool(x: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """Masked mean over k contiguous segments of each row's valid tokens: (S, L, H) → (S, k, H)."""
    lengths = mask.sum(1).clamp(min=1)  # (S,)
    pos = torch.arange(x.shape[1], device=x.device)
    # each valid token i of a row with n tokens belongs to segment floor(i * k / n)
    seg = (pos.unsqueeze(0) * k) // lengths.unsqueeze(1)  # (S, L)
    weights = (seg.unsqueeze(1) == torch.arange(k, device=x.device).view(1, k, 1)) & mask.unsqueeze(1)
    # rows shorter than k leave segments empty: let those copy the nearest token instead of staying zero
    empty = weights.sum(-1) == 0  # (S, k)
    if empty.any():
        nearest = (torch.arange(k, device=x.device).unsqueeze(0) * lengths.unsqueeze(1)) // k  # (S, k)
        fill = nn.functional.one_hot(nearest, x.shape[1]).bool() & mask.unsqueeze(1)
        weights = torch.where(empty.unsqueeze(-1), fill, weights)
    w = weights.to(x.dtype)
    return (w @ x) / w.sum(-1, keepdim=True).clamp(min=1)


class Projector(nn.Module, abc.ABC):
    """Base: a per-encoder input map into decoder width, then a body shared by every modality.

    Subclasses emit K vectors per sequence unless they pool per window; the input maps let encoders of
    different widths (DNA, protein) share one projector, as ChatNT's single projection does.
    """

    needs_question = False
    pool_windows = False

    def __init__(self, encoder_dims: dict[str, int], decoder_dim: int, num_queries: int = _D.num_queries):
        super().__init__()
        self.num_queries = num_queries
        self.input_proj = nn.ModuleDict({name: nn.Linear(d, decoder_dim) for name, d in encoder_dims.items()})

    @staticmethod
    def num_tokens_for(spec: ProjectorConfig, num_windows: int) -> int:
        """Placeholder tokens one sequence occupies in the prompt under this config."""
        return spec.num_queries

    def forward(self, encoder: str, seq, seq_mask, question=None, question_mask=None) -> torch.Tensor:
        """(S, L, He) sequence embeddings from `encoder` [+ question (S, Q, Hd)] → (S, K, Hd)."""
        return self.body(self.input_proj[encoder](seq), seq_mask, question, question_mask)

    @abc.abstractmethod
    def body(self, x, mask, question=None, question_mask=None) -> torch.Tensor:
        """The modality-independent part, in decoder width."""


class LinearProjector(Projector):
    """One linear map per token (per encoder), then pooled into K vectors."""

    def __init__(
        self, encoder_dims: dict[str, int], decoder_dim: int, num_queries: int = _D.num_queries, **_: Any
    ):
        super().__init__(encoder_dims, decoder_dim, num_queries)

    def body(self, x, mask, question=None, question_mask=None) -> torch.Tensor:
        """Pool the projected tokens into K segments."""
        return segment_pool(x, mask, self.num_queries)


class MLPProjector(Projector):
    """Two-layer MLP per token; with window pooling (GeneChat) each encoder window becomes one vector."""

    def __init__(
        self, encoder_dims: dict[str, int], decoder_dim: int, num_queries: int = _D.num_queries,
        pool_windows: bool = _D.pool_windows,
        **_: Any,
    ):  # fmt: skip
        super().__init__(encoder_dims, decoder_dim, num_queries)
        self.pool_windows = pool_windows
        self.net = nn.Sequential(nn.GELU(), nn.Linear(decoder_dim, decoder_dim))

    @staticmethod
    def num_tokens_for(spec: ProjectorConfig, num_windows: int) -> int:
        """Placeholder tokens one sequence occupies in the prompt under this config."""
        return num_windows if spec.pool_windows else spec.num_queries

    def body(self, x, mask, question=None, question_mask=None) -> torch.Tensor:
        """(S, L, Hd) → (S, K, Hd), or (S, windows, Hd) with window pooling (inputs already pooled)."""
        y = self.net(x)
        return y if self.pool_windows else segment_pool(y, mask, self.num_queries)


class CrossAttention(nn.Module):
    """Latents attend to [context; latents] with padding masked (q/k/v/out projections with biases)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True, bias=True)

    def forward(self, latents: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor) -> torch.Tensor:
        """Attend from latents (S, K, D) to context (S, C, D) where context_mask (S, C) marks valid tokens."""
        kv = torch.cat([context, latents], dim=1)
        keep = torch.cat([context_mask, context_mask.new_ones(latents.shape[:2])], dim=1)
        out, _ = self.attn(latents, kv, kv, key_padding_mask=~keep, need_weights=False)
        return out


class PerceiverLayer(nn.Module):
    """LN → cross-attn over [sequence; latents] → (LN → cross-attn over [question; latents]) → LN → MLP."""

    def __init__(self, dim: int, heads: int, ffn_mult: int, english_aware: bool):
        super().__init__()
        self.norm_seq = nn.LayerNorm(dim)
        self.seq_attn = CrossAttention(dim, heads)
        self.english_aware = english_aware
        if english_aware:
            self.norm_q = nn.LayerNorm(dim)
            self.q_attn = CrossAttention(dim, heads)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_mult * dim), nn.GELU(), nn.Linear(ffn_mult * dim, dim))

    def forward(self, lat, seq, seq_mask, question=None, question_mask=None):
        """One residual block over the latents."""
        lat = lat + self.seq_attn(self.norm_seq(lat), seq, seq_mask)
        if self.english_aware:
            lat = lat + self.q_attn(self.norm_q(lat), question, question_mask)
        return lat + self.ffn(self.norm_ffn(lat))


class PerceiverProjector(Projector):
    """K learned queries cross-attending to the sequence embeddings (Perceiver resampler)."""

    english_aware = False

    def __init__(
        self,
        encoder_dims: dict[str, int],
        decoder_dim: int,
        num_queries: int = _D.num_queries,
        num_layers: int = _D.num_layers,
        num_heads: int = _D.num_heads,
        ffn_mult: int = _D.ffn_mult,
        **_: Any,
    ):
        # ChatNT maps encoder width to decoder width first (input_proj), then resamples in decoder space
        super().__init__(encoder_dims, decoder_dim, num_queries)
        self.latents = nn.Parameter(torch.randn(num_queries, decoder_dim) * 0.02)
        self.layers = nn.ModuleList(
            PerceiverLayer(decoder_dim, num_heads, ffn_mult, self.english_aware) for _ in range(num_layers)
        )

    def body(self, x, mask, question=None, question_mask=None) -> torch.Tensor:
        """Resample (S, L, Hd) tokens into (S, K, Hd) latents."""
        lat = self.latents.unsqueeze(0).expand(x.shape[0], -1, -1)
        for layer in self.layers:
            lat = layer(lat, x, mask, question, question_mask)
        return lat


class EnglishPerceiverProjector(PerceiverProjector):
    """ChatNT's English-aware Perceiver: every layer also cross-attends to the embedded question."""

    needs_question = True
    english_aware = True


class TaskRoutedProjector(Projector):
    """Question-routed readout for encoders that emit one token per task head (the feature encoders).

    The question (mean and max of its decoder token embeddings) forms a query; a key per encoder token
    scores it, so the softmax over tokens picks the asked task's head token — a step trainable by a
    cross-entropy on the record's task alone, with no decoder pass (`route_logits`). The picked token
    (task identity + head output) and the mean of all tokens go through an MLP to K decoder vectors.
    """

    needs_question = True

    def __init__(
        self, encoder_dims: dict[str, int], decoder_dim: int, num_queries: int = _D.num_queries,
        route_dim: int = _D.route_dim, hidden: int = _D.hidden,
        route_loss_weight: float = _D.route_loss_weight, word_weights: bool = _D.word_weights,
        gate_slots: int = _D.gate_slots, hard_route: bool = _D.hard_route,
        ngram_buckets: int = _D.ngram_buckets, ngram_dim: int = _D.ngram_dim, **_: Any,
    ):  # fmt: skip
        super().__init__(encoder_dims, decoder_dim, num_queries)
        self.route_loss_weight = route_loss_weight
        self.word_weights = word_weights  # False: the question is its mean and max embedding only (ablation)
        # gated readout: the routed token's last `gate_slots` values (class probabilities of a "probs" feature
        # encoder) each scale one learned set of K vectors shared by every task, so "class 1 of this head is
        # likely" moves the answer the same way for all tasks and is learned from all of them at once
        self.gate_slots = gate_slots
        self.gates = nn.Parameter(torch.zeros(gate_slots, num_queries, decoder_dim))
        # hard routing: exactly the picked token is read (straight-through gradients to the router), so the
        # decoder never sees a blend of two heads' answers
        self.hard_route = hard_route
        # hashed unigrams and bigrams of the question's token ids, a learned vector each, added to the query:
        # tasks told apart by one token ("ChIP-seq set 1" vs "set 3", "H3K4me1" vs "H3K4me3") are hard to
        # separate from pooled frozen embeddings, easy from the ids; unseen n-grams keep their zero vector
        self.ngram_buckets = ngram_buckets
        self.ngrams = nn.Embedding(ngram_buckets, ngram_dim) if ngram_buckets else None
        self.ngram_proj = nn.Linear(ngram_dim, route_dim, bias=False) if ngram_buckets else None
        if self.ngrams is not None:
            nn.init.zeros_(self.ngrams.weight)
        self.word_score = nn.Sequential(nn.Linear(decoder_dim, route_dim), nn.Tanh(), nn.Linear(route_dim, 1))
        self.query = nn.Sequential(nn.Linear(3 * decoder_dim, route_dim), nn.GELU(), nn.Linear(route_dim, route_dim))
        self.keys = nn.ModuleDict({name: nn.Linear(d, route_dim) for name, d in encoder_dims.items()})
        self.temperature = nn.Parameter(torch.tensor(10.0).log())
        self.values = nn.ModuleDict({name: nn.Linear(d, hidden) for name, d in encoder_dims.items()})
        self.context = nn.Linear(decoder_dim, hidden)
        self.out = nn.Sequential(
            nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, num_queries * decoder_dim)
        )  # fmt: skip
        self.decoder_dim = decoder_dim

    def ngram_vector(self, question_ids: torch.Tensor, question_mask: torch.Tensor) -> torch.Tensor:
        """(S, route_dim) sum of the question's hashed unigram and bigram vectors."""
        assert self.ngrams is not None
        ids = question_ids.long()
        bigrams = (ids[:, :-1] * 1_000_003 + ids[:, 1:]) % self.ngram_buckets
        grams = torch.cat([ids % self.ngram_buckets, bigrams], dim=1)
        keep = torch.cat([question_mask, question_mask[:, :-1] & question_mask[:, 1:]], dim=1)
        summed = (self.ngrams(grams) * keep.unsqueeze(-1).to(self.ngrams.weight.dtype)).sum(1)
        return self.ngram_proj(summed)

    def route_logits(self, encoder: str, seq, seq_mask, question, question_mask, question_ids=None) -> torch.Tensor:
        """(S, L) scores of each encoder token for the question; padding at -inf."""
        m = question_mask.unsqueeze(-1).to(question.dtype)
        mean = (question * m).sum(1) / m.sum(1).clamp(min=1)
        peak = question.masked_fill(~question_mask.unsqueeze(-1), float("-inf")).amax(1).clamp(min=-1e4)
        # learned word weights: the few words that name the task (a mark, a species, a set) outweigh the phrasing
        if self.word_weights:
            w = self.word_score(question).squeeze(-1).masked_fill(~question_mask, float("-inf")).softmax(-1)
            focus = torch.einsum("sq,sqd->sd", w, question)
        else:
            focus = torch.zeros_like(mean)
        q = self.query(torch.cat([mean, peak, focus], dim=-1))
        if self.ngrams is not None:
            if question_ids is None:
                raise ValueError("this task_router reads the question's token ids: pass question_ids")
            q = q + self.ngram_vector(question_ids, question_mask)
        q = nn.functional.normalize(q, dim=-1)
        # cosine scores with a learned temperature: token norms vary with head outputs and spectra, so raw
        # dot products would let a loud token win whatever the question
        k = nn.functional.normalize(self.keys[encoder](seq), dim=-1)
        scores = self.temperature.exp() * torch.einsum("sld,sd->sl", k, q)
        return scores.masked_fill(~seq_mask, float("-inf"))

    def forward(
        self, encoder: str, seq, seq_mask, question=None, question_mask=None, question_ids=None
    ) -> torch.Tensor:
        """(S, L, He) tokens + question (S, Q, Hd) and its token ids (S, Q) → (S, K, Hd)."""
        weights = self.route_logits(encoder, seq, seq_mask, question, question_mask, question_ids).softmax(-1)
        if self.hard_route:
            hard = nn.functional.one_hot(weights.argmax(-1), weights.shape[-1]).to(weights.dtype)
            weights = hard + weights - weights.detach()
        routed = torch.einsum("sl,slh->sh", weights, seq)
        m = seq_mask.unsqueeze(-1).to(seq.dtype)
        context = (self.input_proj[encoder](seq) * m).sum(1) / m.sum(1).clamp(min=1)
        z = self.values[encoder](routed) + self.context(context)
        out = self.out(z).view(seq.shape[0], self.num_queries, self.decoder_dim)
        if self.gate_slots:
            out = out + torch.einsum("sc,ckd->skd", routed[:, -self.gate_slots :], self.gates)
        return out

    def body(self, x, mask, question=None, question_mask=None) -> torch.Tensor:
        """Not a step of this projector: routing needs the encoder's own tokens, so `forward` does all the work."""
        raise TypeError(
            "task_router reads the encoder's own tokens: call forward(encoder, seq, mask, question, question_mask)"
        )


PROJECTORS: dict[str, type[Projector]] = {
    "linear": LinearProjector,
    "mlp": MLPProjector,
    "perceiver": PerceiverProjector,
    "english_perceiver": EnglishPerceiverProjector,
    "task_router": TaskRoutedProjector,
}


def projector_class(spec: ProjectorConfig | dict[str, Any]) -> type[Projector]:
    """The projector class named by a config entry."""
    kind = spec.type if isinstance(spec, ProjectorConfig) else spec["type"]
    if kind not in PROJECTORS:
        raise KeyError(f"unknown projector '{kind}': choose from {sorted(PROJECTORS)}")
    return PROJECTORS[kind]


def build_projector(
    spec: ProjectorConfig | dict[str, Any], encoder_dims: dict[str, int], decoder_dim: int
) -> Projector:
    """Build the projector from its config entry (a `ProjectorConfig`, or a mapping of one) for these encoder
    widths; each projector type takes the settings it reads and ignores the others."""
    cfg = spec if isinstance(spec, ProjectorConfig) else ProjectorConfig.from_dict(spec)
    return projector_class(cfg)(encoder_dims=encoder_dims, decoder_dim=decoder_dim, **cfg.settings())
