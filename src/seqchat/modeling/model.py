"""SeqChatForConditionalGeneration: encoders → projector → scattered into a chat decoder's prompt."""

from __future__ import annotations

import json
import math
import re
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import DynamicCache

from seqchat.errors import SeqChatInputError
from seqchat.modeling.config import SeqChatConfig
from seqchat.modeling.decoders import load_decoder, load_tokenizer
from seqchat.modeling.encoders import BUILTIN_ENCODERS, build_sequence_encoder, pad_pieces
from seqchat.modeling.processor import IGNORE_INDEX, SeqChatProcessor
from seqchat.modeling.projectors import build_projector

WEIGHTS_NAME = "model.safetensors"
# rows of vocabulary logits computed at once when scoring candidates (memory bound, not speed)
_HEAD_CHUNK = 256


def untied(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keep one key per shared tensor (tied embeddings / LM head): safetensors refuses shared memory,
    and loading the kept key restores the tie."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for k, v in state.items():
        if v.data_ptr() not in seen:
            seen.add(v.data_ptr())
            out[k] = v
    return out


def _token_trie(seqs: list[list[int]]) -> tuple[list[int], list[int], list[int], list[list[int]]]:
    """The trie of the candidates' token prefixes that are fed to the decoder (each candidate less its last token).

    Returns node tokens, node parents (-1: the prompt), node depths (1: first candidate token), and per
    candidate the node each of its tokens is predicted from (-1: the prompt's last position).
    """
    tokens: list[int] = []
    parents: list[int] = []
    depth: list[int] = []
    index: dict[tuple[int, int], int] = {}
    pred_from = []
    for seq in seqs:
        node, frm = -1, []
        for t in seq:
            frm.append(node)
            if (node, t) not in index:
                index[(node, t)] = len(tokens)
                tokens.append(t)
                parents.append(node)
                depth.append(depth[node] + 1 if node >= 0 else 1)
            node = index[(node, t)]
        pred_from.append(frm)
    # nodes no token is predicted from (every candidate's last token) are never fed: drop them, keep the order
    used = sorted({f for frm in pred_from for f in frm if f >= 0})
    new = {old: k for k, old in enumerate(used)}
    new[-1] = -1
    return ([tokens[u] for u in used], [new[parents[u]] for u in used], [depth[u] for u in used],
            [[new[f] for f in frm] for frm in pred_from])  # fmt: skip


def _ancestors(parents: list[int]) -> torch.Tensor:
    """(n, n) bool: node i sees node j when j is i or one of its ancestors (parents come before children)."""
    out = torch.eye(len(parents), dtype=torch.bool)
    for i, p in enumerate(parents):
        if p >= 0:
            out[i] |= out[p]
    return out


def _cast(v: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """`v` in `dtype`, unless it holds values past that dtype's range (they would turn to inf): then as it is."""
    if dtype is None or not v.is_floating_point() or v.dtype == dtype:
        return v
    if v.numel() and float(v.abs().max()) > torch.finfo(dtype).max:
        return v
    return v.to(dtype)


def _build_decoder(config: SeqChatConfig) -> nn.Module:
    if config.decoder_config is not None:
        from transformers import AutoConfig, AutoModelForCausalLM

        cfg = dict(config.decoder_config)
        return AutoModelForCausalLM.from_config(AutoConfig.for_model(cfg.pop("model_type"), **cfg))
    return load_decoder(config.decoder)


class SeqChatForConditionalGeneration(nn.Module):
    """A chat decoder that reads sequences through per-modality encoders and a projector."""

    def __init__(
        self, config: SeqChatConfig, tokenizer: Any | None = None, encoders_from_config: set[str] = frozenset()
    ):
        super().__init__()
        self.config = config
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(config.tokenizer_source)
        self.processor = SeqChatProcessor(tokenizer, config)
        self.decoder = _build_decoder(config)
        self.processor.context_length = getattr(self.decoder.config, "max_position_embeddings", None)
        dec_dim = self.decoder.get_input_embeddings().embedding_dim
        self.encoders = nn.ModuleDict()
        for name, spec in config.encoders.items():
            self.encoders[name] = build_sequence_encoder(spec, load_weights=name not in encoders_from_config)
        dims = {name: enc.hidden_size for name, enc in self.encoders.items()}
        self.projector = build_projector(config.projector, dims, dec_dim)
        self.encoder_cache: OrderedDict[tuple[str, bool], torch.Tensor] = OrderedDict()
        self.encoder_cache_size = 512
        self._prefix_kv: dict[tuple[int, ...], list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self.prefix_cache_enabled = True
        # score_many's one-pass path (shared prefix, candidate token trie); False runs the reference path
        self.fast_scoring = True
        self.apply_freezing()

    # ---- freezing -----------------------------------------------------------------------------
    def apply_freezing(self) -> None:
        """Decoder frozen (LoRA adapters trainable if configured), encoders per config, projector trainable."""
        self.decoder.requires_grad_(not self.config.freeze_decoder)
        if self.config.lora:
            from peft import LoraConfig, get_peft_model

            lora = self.config.lora
            self.decoder = get_peft_model(
                self.decoder,
                LoraConfig(
                    r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                    target_modules=list(lora.target_modules), task_type="CAUSAL_LM",
                ),
            )  # fmt: skip
        self.encoders.requires_grad_(not self.config.freeze_encoders)
        self.projector.requires_grad_(True)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters the optimizer updates."""
        return [p for p in self.parameters() if p.requires_grad]

    # ---- embedding ----------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Device of the decoder."""
        return self.decoder.get_input_embeddings().weight.device

    def _encode_pieces(self, name: str, d: dict[str, Any], max_windows: int = 64) -> list[torch.Tensor]:
        """Per unique sequence: its content-token embeddings (or one vector per window when pooling)."""
        pool = self.projector.pool_windows
        use_cache = not torch.is_grad_enabled()
        keys = d["keys"]
        pieces: list[torch.Tensor | None] = [
            self.encoder_cache.get((k, pool)) if use_cache else None for k in keys
        ]
        todo = [i for i, p in enumerate(pieces) if p is None]
        if todo:
            dev = self.device
            w2s = d["window_to_seq"]
            sel = torch.isin(w2s, torch.tensor(todo))
            ids, att, content = d["input_ids"][sel], d["attention_mask"][sel], d["content_mask"][sel]
            w2s = w2s[sel]
            hidden = torch.cat([
                self.encoders[name](ids[i : i + max_windows].to(dev), att[i : i + max_windows].to(dev))
                for i in range(0, ids.shape[0], max_windows)
            ])  # fmt: skip
            content = self.encoders[name].output_mask(content.to(dev))
            for i in todo:
                h, c = hidden[w2s == i], content[w2s == i]
                if pool:
                    m = c.unsqueeze(-1).to(h.dtype)
                    pieces[i] = (h * m).sum(1) / m.sum(1).clamp(min=1)
                else:
                    pieces[i] = h[c]
                if use_cache:
                    self.encoder_cache[(keys[i], pool)] = pieces[i]
                    while len(self.encoder_cache) > self.encoder_cache_size:
                        self.encoder_cache.popitem(last=False)
        return pieces  # type: ignore[return-value]

    def project_sequences(self, batch: dict[str, Any]) -> list[torch.Tensor]:
        """One (n_tokens, decoder_dim) tensor per sequence reference, in placeholder order."""
        occ = batch["occurrences"]
        if not occ:
            return []
        pieces = {name: self._encode_pieces(name, d) for name, d in batch["sequence_inputs"].items()}
        emb = self.decoder.get_input_embeddings()
        q_ids = batch["question_ids"].to(self.device)
        q_mask = batch["question_mask"].to(self.device)
        out: list[torch.Tensor | None] = [None] * len(occ)
        for name in dict.fromkeys(e for e, _ in occ):
            idx = [i for i, (e, _) in enumerate(occ) if e == name]
            group = [pieces[name][occ[i][1]] for i in idx]
            seq, mask = pad_pieces(group, group[0])
            proj = self.projector
            question = emb(q_ids[idx]) if proj.needs_question else None
            # a routing projector also reads the question's token ids (its n-gram features)
            extra = {"question_ids": q_ids[idx]} if hasattr(proj, "route_logits") else {}
            y = proj(name, seq, mask, question, q_mask[idx], **extra)
            for j, i in enumerate(idx):
                out[i] = y[j, : group[j].shape[0]] if proj.pool_windows else y[j]
        return out  # type: ignore[return-value]

    def route_loss(self, batch: dict[str, Any]) -> torch.Tensor | None:
        """Cross-entropy of a routing projector's token choice against each reference's task head, or None.

        `batch["route_tasks"]` names the task of every sequence reference (None where no single task
        applies); only references whose encoder has a head for that task count. Needs no decoder pass.
        """
        tasks = batch.get("route_tasks")
        if tasks is None or not hasattr(self.projector, "route_logits") or not batch["occurrences"]:
            return None
        occ = batch["occurrences"]
        targets = [
            self.encoders[e].route_index(t) if t is not None and hasattr(self.encoders[e], "route_index") else None
            for (e, _), t in zip(occ, tasks, strict=True)
        ]  # fmt: skip
        keep = [i for i, t in enumerate(targets) if t is not None]
        if not keep:
            return None
        pieces = {name: self._encode_pieces(name, d) for name, d in batch["sequence_inputs"].items()}
        q_ids, q_mask = batch["question_ids"].to(self.device), batch["question_mask"].to(self.device)
        emb = self.decoder.get_input_embeddings()
        losses = []
        for name in dict.fromkeys(occ[i][0] for i in keep):
            idx = [i for i in keep if occ[i][0] == name]
            seq, mask = pad_pieces([pieces[name][occ[i][1]] for i in idx], pieces[name][occ[idx[0]][1]])
            logits = self.projector.route_logits(name, seq, mask, emb(q_ids[idx]), q_mask[idx], q_ids[idx])
            target = torch.tensor([targets[i] for i in idx], device=self.device)
            losses.append(nn.functional.cross_entropy(logits.float(), target, reduction="sum"))
        return torch.stack(losses).sum() / len(keep)

    @torch.no_grad()
    def route_picks(self, batch: dict[str, Any]) -> list[tuple[str, int] | None]:
        """Per sequence reference: (encoder, the token its question routes to), or None where nothing routes."""
        if not hasattr(self.projector, "route_logits") or not batch["occurrences"]:
            return [None] * len(batch["occurrences"])
        pieces = {name: self._encode_pieces(name, d) for name, d in batch["sequence_inputs"].items()}
        q_ids, q_mask = batch["question_ids"].to(self.device), batch["question_mask"].to(self.device)
        emb = self.decoder.get_input_embeddings()
        out: list[tuple[str, int] | None] = []
        for i, (enc, j) in enumerate(batch["occurrences"]):
            piece = pieces[enc][j][None]
            mask = torch.ones(piece.shape[:2], dtype=torch.bool, device=piece.device)
            logits = self.projector.route_logits(
                enc, piece, mask, emb(q_ids[i : i + 1]), q_mask[i : i + 1], q_ids[i : i + 1]
            )
            out.append((enc, int(logits.argmax())))
        return out

    def embed_inputs(self, batch: dict[str, Any]) -> torch.Tensor:
        """Decoder input embeddings with every placeholder run replaced by its projected sequence."""
        ids = batch["input_ids"].to(self.device)
        is_ph = ids == self.processor.placeholder_id
        # the placeholder id lies past the decoder vocabulary: never look it up (ChatNT clamped it silently)
        embeds = self.decoder.get_input_embeddings()(ids.masked_fill(is_ph, self.processor.tokenizer.pad_token_id))
        vectors = self.project_sequences(batch)
        if vectors:
            flat = torch.cat(vectors).to(embeds.dtype)
            if flat.shape[0] != int(is_ph.sum()):
                raise SeqChatInputError(f"{int(is_ph.sum())} placeholder tokens but {flat.shape[0]} sequence vectors")
            embeds = embeds.masked_scatter(is_ph.unsqueeze(-1).expand_as(embeds), flat)
        elif is_ph.any():
            raise SeqChatInputError("placeholder tokens found but no sequences were given")
        return embeds

    def clear_caches(self) -> None:
        """Forget cached encoder outputs and prefix keys/values (e.g. to time a cold run)."""
        self.encoder_cache.clear()
        self._prefix_kv.clear()

    # ---- forward / loss -----------------------------------------------------------------------
    @staticmethod
    def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
        """Positions that skip left padding."""
        return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)

    def _prefix_kv_reusable(self) -> bool:
        """Whether a prefix's keys/values may be kept across calls: only while the decoder's weights cannot change."""
        return self.prefix_cache_enabled and self.config.freeze_decoder and not self.config.lora

    def _shared_prefix(self, ids: torch.Tensor, att: torch.Tensor, labels: torch.Tensor | None) -> int:
        """Length of the token prefix every row shares (system prompt, chat header), or 0 if unusable.

        Only with a frozen decoder and no adapters: then the prefix's keys/values never change and can be
        computed once, which saves a third of the decoder work in training.
        """
        if not self._prefix_kv_reusable():
            return 0
        if not bool((att[:, 0] == 1).all()):
            return 0
        same = (ids == ids[:1]).all(0) & (ids[0] != self.processor.placeholder_id) & (att == 1).all(0)
        n = int(same.long().cumprod(0).sum())
        n = min(n, ids.shape[1] - 1)
        # the first token after the prefix is predicted from inside it: it must carry no label
        if labels is not None and n and bool((labels[:, n] != IGNORE_INDEX).any()):
            return 0
        return n if n >= 8 else 0

    def _prefix_cache(self, prefix: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per-layer (keys, values) of a token prefix at positions 0.., kept for later calls when reusable."""
        key = tuple(prefix.tolist())
        if key in self._prefix_kv:
            return self._prefix_kv[key]
        with torch.no_grad():
            out = self.decoder.get_decoder()(
                input_ids=prefix[None].to(self.device), use_cache=True,
                position_ids=torch.arange(len(key), device=self.device)[None],
            )  # fmt: skip
        kv = [(layer.keys, layer.values) for layer in out.cache.layers]
        if self._prefix_kv_reusable():
            self._prefix_kv[key] = kv
            while len(self._prefix_kv) > 8:
                self._prefix_kv.pop(next(iter(self._prefix_kv)))
        return kv

    def forward(self, batch: dict[str, Any], return_logits: bool = False) -> dict[str, torch.Tensor]:
        """Cross-entropy on answer tokens only; logits on request."""
        ids = batch["input_ids"].to(self.device)
        att = batch["attention_mask"].to(self.device)
        labels = batch.get("labels")
        labels = labels.to(self.device) if labels is not None else None
        n = 0 if return_logits else self._shared_prefix(ids, att, labels)
        embeds = self.embed_inputs(batch)
        kwargs: dict[str, Any] = {}
        if n:
            b = ids.shape[0]
            kv = self._prefix_cache(ids[0, :n])
            kwargs["cache"] = DynamicCache(ddp_cache_data=[(k.expand(b, -1, -1, -1), v.expand(b, -1, -1, -1))
                                                                     for k, v in kv])  # fmt: skip
        hidden = self.decoder.get_decoder()(
            inputs_embeds=embeds[:, n:], attention_mask=att, position_ids=self.position_ids(att)[:, n:],
            use_cache=False, **kwargs,
        ).last_hidden_state  # fmt: skip
        head = self.decoder.get_output_embeddings()
        out: dict[str, torch.Tensor] = {}
        if labels is not None:
            target = labels[:, n + 1 :]
            keep = target != IGNORE_INDEX
            # the vocabulary projection only where there is an answer token to predict (saves most of the time)
            logits = head(hidden[:, :-1][keep])
            out["loss"] = nn.functional.cross_entropy(logits.float(), target[keep], reduction="mean")
            out["num_tokens"] = keep.sum()
            route = self.route_loss(batch)
            if route is not None:
                out["route_loss"] = route
                out["loss"] = out["loss"] + self.projector.route_loss_weight * route
        if return_logits:
            out["logits"] = head(hidden)
        return out

    # ---- generation ---------------------------------------------------------------------------
    def _stop_ids(self) -> set[int]:
        eos = self.processor.tokenizer.eos_token_id
        return {self.processor.end_of_turn_ids[0]} | ({eos} if eos is not None else set())

    @torch.no_grad()
    def generate(
        self,
        batch: dict[str, Any],
        max_new_tokens: int = 128,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        use_cache: bool = True,
        streamer: Callable[[int], None] | None = None,
        generator: torch.Generator | None = None,
        stop_at_eos: bool = True,
        token_logprobs: list[list[float]] | None = None,
        row_streamers: list[Callable[[int], None] | None] | None = None,
    ) -> list[list[int]]:
        """Greedy (or sampled) decoding; with use_cache=False every step recomputes the whole window (ChatNT).

        stop_at_eos=False always produces max_new_tokens tokens (benchmarks). An empty list passed as
        `token_logprobs` receives, per row, the log-probability of each chosen token (the stop token included).
        `streamer` receives each token of a one-row batch; `row_streamers[b]` (if not None) each token of row b.
        """
        if batch["input_ids"].shape[0] > 1 and batch["attention_mask"][:, -1].min() == 0:
            raise ValueError("batched generation needs left padding: process with padding_side='left'")
        embeds = self.embed_inputs(batch)
        att = batch["attention_mask"].to(self.device)
        emb = self.decoder.get_input_embeddings()
        stop = self._stop_ids() if stop_at_eos else set()
        n = embeds.shape[0]
        done = torch.zeros(n, dtype=torch.bool, device=self.device)
        tokens: list[list[int]] = [[] for _ in range(n)]
        if token_logprobs is not None:
            token_logprobs[:] = [[] for _ in range(n)]
        cache = None
        step_embeds, step_pos = embeds, self.position_ids(att)
        for _ in range(max_new_tokens):
            out = self.decoder(
                inputs_embeds=step_embeds, attention_mask=att, position_ids=step_pos,
                cache=cache, use_cache=use_cache, logits_to_keep=1,
            )  # fmt: skip
            logits = out.logits[:, -1].float()
            nxt = self._pick(logits, do_sample, temperature, top_p, generator)
            nxt = torch.where(done, torch.full_like(nxt, self.processor.tokenizer.pad_token_id), nxt)
            if token_logprobs is not None:
                chosen = torch.log_softmax(logits, -1).gather(1, nxt[:, None])[:, 0].tolist()
            for b in range(n):
                if not done[b]:
                    t = int(nxt[b])
                    if token_logprobs is not None:
                        token_logprobs[b].append(chosen[b])
                    if t in stop:
                        done[b] = True
                    else:
                        tokens[b].append(t)
                        if streamer is not None and n == 1:
                            streamer(t)
                        if row_streamers is not None and row_streamers[b] is not None:
                            row_streamers[b](t)
            if bool(done.all()):
                break
            new_pos = step_pos[:, -1:] + 1
            att = torch.cat([att, torch.ones_like(att[:, :1])], dim=1)
            if use_cache:
                cache = out.cache
                step_embeds, step_pos = emb(nxt[:, None]), new_pos
            else:
                embeds = torch.cat([embeds, emb(nxt[:, None])], dim=1)
                step_embeds, step_pos = embeds, self.position_ids(att)
        return tokens

    @staticmethod
    def _pick(logits, do_sample, temperature, top_p, generator) -> torch.Tensor:
        if not do_sample:
            return logits.argmax(-1)
        probs = torch.softmax(logits / max(temperature, 1e-5), -1)
        if top_p < 1.0:
            sorted_p, order = probs.sort(-1, descending=True)
            cut = sorted_p.cumsum(-1) - sorted_p > top_p
            sorted_p = sorted_p.masked_fill(cut, 0)
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)

    # ---- candidate scoring --------------------------------------------------------------------
    @torch.no_grad()
    def score(self, batch: dict[str, Any], candidates: list[str]) -> dict[str, torch.Tensor]:
        """Mean token log-likelihood and perplexity of each candidate answer after one prompt.

        The prompt is processed with add_generation_prompt=True, batch of one (see `score_many`).
        """
        if batch["input_ids"].shape[0] != 1:
            raise ValueError("score takes one prompt at a time")
        if not candidates:
            raise SeqChatInputError("score needs at least one candidate answer")
        return {k: v[0] for k, v in self.score_many(batch, candidates).items()}

    @torch.no_grad()
    def score_many(self, batch: dict[str, Any], candidates: list[str] | list[list[str]]) -> dict[str, torch.Tensor]:
        """`score` for a left-padded batch of prompts: (n_prompts, n_candidates) tensors.

        `candidates` is one list shared by every prompt, or one list per prompt (all of one length).
        One decoder pass for the whole batch: the token prefix all prompts share comes from a small KV
        cache, and each prompt's remaining tokens run together with its candidates' token trie (shared
        leading tokens once, tree attention). `fast_scoring = False` runs the reference path instead.
        """
        n_prompts = batch["input_ids"].shape[0]
        if n_prompts > 1 and batch["attention_mask"][:, -1].min() == 0:
            raise ValueError("batched scoring needs left padding: process with padding_side='left'")
        shared = bool(candidates) and isinstance(candidates[0], str)
        lists = [list(candidates)] * n_prompts if shared else [list(c) for c in candidates]
        if len(lists) != n_prompts:
            raise SeqChatInputError(f"{n_prompts} prompts but {len(lists)} candidate lists")
        n = len(lists[0])
        if n == 0 or any(len(c) != n for c in lists):
            raise SeqChatInputError("score_many needs the same number (at least one) of candidates for every prompt")
        tok, eot = self.processor.tokenizer, self.processor.end_of_turn_ids
        cand = [[tok(c, add_special_tokens=False)["input_ids"] + eot for c in cs] for cs in lists]
        total = (self._candidate_logprobs if self.fast_scoring else self._candidate_logprobs_reference)(batch, cand)
        num = torch.tensor([[len(c) for c in cs] for cs in cand], device=total.device)
        mean = total / num
        return {"mean_logprob": mean, "perplexity": torch.exp(-mean), "num_tokens": num}

    def _candidate_logprobs_reference(self, batch: dict[str, Any], cand: list[list[list[int]]]) -> torch.Tensor:
        """Summed token log-likelihoods (n_prompts, n_candidates): the prompt's KV cache copied per candidate."""
        n_prompts, n = len(cand), len(cand[0])
        flat = [c for cs in cand for c in cs]
        att = batch["attention_mask"].to(self.device)
        out = self.decoder(
            inputs_embeds=self.embed_inputs(batch), attention_mask=att, position_ids=self.position_ids(att),
            use_cache=True, logits_to_keep=1,
        )  # fmt: skip
        first_logp = torch.log_softmax(out.logits[:, -1].float(), -1).repeat_interleave(n, 0)  # (P*C, V)
        cache = out.cache
        cache.batch_repeat_interleave(n)
        rows, longest = len(flat), max(len(c) for c in flat)
        ids = torch.full((rows, longest), self.processor.tokenizer.pad_token_id, dtype=torch.long, device=self.device)
        mask = torch.zeros((rows, longest), dtype=torch.long, device=self.device)
        for i, c in enumerate(flat):
            ids[i, : len(c)] = torch.tensor(c)
            mask[i, : len(c)] = 1
        start = self.position_ids(att)[:, -1].repeat_interleave(n) + 1
        out2 = self.decoder(
            input_ids=ids, attention_mask=torch.cat([att.repeat_interleave(n, 0), mask], dim=1),
            position_ids=start[:, None] + torch.arange(longest, device=self.device), cache=cache, use_cache=True,
        )  # fmt: skip
        logits = out2.logits[:, :-1].float()  # predicts candidate tokens 2..L
        rest = logits.gather(2, ids[:, 1:, None]).squeeze(-1) - torch.logsumexp(logits, -1)
        token_logp = torch.cat([first_logp.gather(1, ids[:, :1]), rest], dim=1) * mask
        return token_logp.sum(1).view(n_prompts, n)

    def _candidate_logprobs(self, batch: dict[str, Any], cand: list[list[list[int]]]) -> torch.Tensor:
        """Summed token log-likelihoods (n_prompts, n_candidates) from one decoder pass over the batch.

        Query columns per prompt: [left pad | prompt tokens after the shared prefix | candidate trie nodes].
        A trie node holds one candidate token that some longer candidate continues from (last tokens are
        only predicted, never fed); it sees the whole prompt, its ancestors and itself.
        """
        dev = self.device
        ids, att = batch["input_ids"].to(dev), batch["attention_mask"].to(dev)
        embeds = self.embed_inputs(batch)
        n_prompts, width = ids.shape
        lengths = att.sum(1).tolist()
        starts = [width - k for k in lengths]  # left padding: the real tokens are the last `lengths[i]`
        shortest = min(lengths)
        rows = torch.stack([ids[i, s : s + shortest] for i, s in enumerate(starts)])
        same = (rows == rows[:1]).all(0) & (rows[0] != self.processor.placeholder_id)
        # at least the last prompt token stays in the pass: its output predicts each candidate's first token
        n = min(int(same.long().cumprod(0).sum()), shortest - 1)
        tries = [_token_trie(cs) for cs in cand]
        r_max, t_max = max(lengths) - n, max(len(t[0]) for t in tries)
        q = r_max + t_max
        x = torch.zeros(n_prompts, q, embeds.shape[-1], dtype=embeds.dtype, device=dev)
        pos = torch.zeros(n_prompts, q, dtype=torch.long, device=dev)
        allow = torch.zeros(n_prompts, q, n + q, dtype=torch.bool, device=dev)
        allow[:, :, :n] = True
        allow[:, torch.arange(q), n + torch.arange(q)] = True  # padding columns see themselves: no empty softmax row
        causal = torch.ones(r_max, r_max, dtype=torch.bool, device=dev).tril()
        node_tokens = torch.full(
            (n_prompts, t_max), self.processor.tokenizer.pad_token_id, dtype=torch.long, device=dev
        )
        emb = self.decoder.get_input_embeddings()
        for i, ((tokens, parents, depth, _), length) in enumerate(zip(tries, lengths, strict=True)):
            r, a, t = length - n, r_max - (length - n), len(tokens)
            x[i, a:r_max] = embeds[i, starts[i] + n :]
            pos[i, a:r_max] = torch.arange(n, length, device=dev)
            allow[i, a:r_max, n + a : n + r_max] = causal[a:, a:]
            if t:
                node_tokens[i, :t] = torch.tensor(tokens, device=dev)
                pos[i, r_max : r_max + t] = n + r - 1 + torch.tensor(depth, device=dev)
                allow[i, r_max : r_max + t, n + a : n + r_max] = True
                allow[i, r_max : r_max + t, n + r_max : n + r_max + t] = _ancestors(parents).to(dev)
        x[:, r_max:] = emb(node_tokens).to(x.dtype)
        mask = torch.zeros(allow.shape, dtype=x.dtype, device=dev).masked_fill(~allow, torch.finfo(x.dtype).min)
        cache = None
        if n:
            kv = self._prefix_cache(ids[0, starts[0] : starts[0] + n])
            cache = DynamicCache(ddp_cache_data=[(k.expand(n_prompts, -1, -1, -1), v.expand(n_prompts, -1, -1, -1))
                                                 for k, v in kv])  # fmt: skip
        hidden = self.decoder.get_decoder()(
            inputs_embeds=x, attention_mask=mask[:, None], position_ids=pos, cache=cache, use_cache=False,
        ).last_hidden_state  # fmt: skip
        # the vocabulary projection only at the prompt's last column and the trie nodes: (row, column) pairs
        sel_row, sel_col, tok_sel, tok_id, tok_cand = [], [], [], [], []
        for i, (tokens, _, _, pred_from) in enumerate(tries):
            base = len(sel_row)
            sel_row += [i] * (len(tokens) + 1)
            sel_col += list(range(r_max - 1, r_max + len(tokens)))
            for c, (seq, frm) in enumerate(zip(cand[i], pred_from, strict=True)):
                tok_sel += [base + 1 + f for f in frm]
                tok_id += seq
                tok_cand += [i * len(cand[i]) + c] * len(seq)
        h = hidden[torch.tensor(sel_row, device=dev), torch.tensor(sel_col, device=dev)]
        sel, tid = torch.tensor(tok_sel, device=dev), torch.tensor(tok_id, device=dev)
        head = self.decoder.get_output_embeddings()
        logp = torch.empty(len(tok_id), device=dev)
        for c0 in range(0, h.shape[0], _HEAD_CHUNK):  # bounded (rows, vocabulary) logits
            lg = torch.log_softmax(head(h[c0 : c0 + _HEAD_CHUNK]).float(), -1)
            here = (sel >= c0) & (sel < c0 + _HEAD_CHUNK)
            logp[here] = lg[sel[here] - c0, tid[here]]
        total = torch.zeros(n_prompts * len(cand[0]), device=dev).index_add_(
            0, torch.tensor(tok_cand, device=dev), logp
        )
        return total.view(n_prompts, len(cand[0]))

    # ---- convenience --------------------------------------------------------------------------
    def chat(
        self, messages: list[dict[str, str]], sequences: Any = None, max_new_tokens: int = 128, **kwargs: Any
    ) -> str:
        """Answer the last user turn of one conversation."""
        self.eval()
        batch = self.processor(messages, sequences, add_generation_prompt=True, padding_side="left")
        tokens = self.generate(batch, max_new_tokens=max_new_tokens, **kwargs)[0]
        return self.processor.tokenizer.decode(tokens, skip_special_tokens=True).strip()

    # ---- persistence --------------------------------------------------------------------------
    def _always_saved(self, key: str) -> bool:
        """Parts with no pretrained source to reload from: projector, built-in encoders, random decoders."""
        if key.startswith("projector."):
            return True
        if key.startswith("decoder."):
            return self.config.decoder_config is not None
        if key.startswith("encoders."):
            name = key.split(".")[1]
            if self.encoders[name].self_contained:
                return True
            return self.config.encoders[name]["source"] in BUILTIN_ENCODERS or not self.config.freeze_encoders
        return False

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Trainable parameters plus parts that cannot be rebuilt from a pretrained source."""
        trainable = {n for n, p in self.named_parameters() if p.requires_grad}
        return untied({k: v for k, v in self.state_dict().items() if k in trainable or self._always_saved(k)})

    def save_pretrained(self, directory: str | Path, dtype: torch.dtype | None = None, shard_mb: float = 15) -> None:
        """Write config.json and the trainable weights as safetensors shards (never pickle)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        state = {k: _cast(v.detach(), dtype).contiguous().cpu() for k, v in self.trainable_state_dict().items()}
        cfg = SeqChatConfig.from_dict(json.loads(json.dumps(self.config.to_dict())))
        for name in cfg.encoders:
            if any(k.startswith(f"encoders.{name}.") for k in state):
                # saved encoder weights rebuild from this config; no pretraining folder needed at load
                cfg.encoders[name] = self.encoders[name].saved_spec(cfg.encoders[name])
        cfg.save(d)
        for old in d.glob("model*.safetensors"):
            old.unlink()
        shards: list[dict[str, torch.Tensor]] = [{}]
        size = 0
        for k, v in _split_large(state, shard_mb).items():
            nbytes = v.numel() * v.element_size()
            if shards[-1] and size + nbytes > shard_mb * 1024 * 1024:
                shards.append({})
                size = 0
            shards[-1][k] = v
            size += nbytes
        names = [WEIGHTS_NAME] if len(shards) == 1 else [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
                                                          for i in range(len(shards))]  # fmt: skip
        for name, shard in zip(names, shards, strict=True):
            save_file(shard, str(d / name), metadata={"format": "pt"})

    @classmethod
    def from_pretrained(cls, directory: str | Path, tokenizer: Any | None = None) -> SeqChatForConditionalGeneration:
        """Rebuild from a folder written by save_pretrained (base decoder/encoders from their sources).

        A folder that does not hold exactly the weights its config needs (missing, unexpected, misshapen or
        non-finite tensors, a missing, corrupt or truncated shard, a broken config.json) is refused with one
        SeqChatInputError naming the folder and the keys, never loaded with random parts.
        """
        d = Path(directory)
        if not (d / "config.json").exists():
            raise SeqChatInputError(f"'{d}' is not a seqchat model folder (no config.json)")
        state = _read_weights(d)
        try:
            config = SeqChatConfig.from_file(d / "config.json")
            saved_encoders = {n for n in config.encoders if any(k.startswith(f"encoders.{n}.") for k in state)}
            model = cls(config, tokenizer=tokenizer, encoders_from_config=saved_encoders)
        except SeqChatInputError as e:
            raise SeqChatInputError(f"'{d}/config.json': {e}") from None
        except (ValueError, TypeError, KeyError, AttributeError) as e:  # JSON syntax, wrong fields or values
            raise SeqChatInputError(
                f"'{d}/config.json' is not a valid seqchat config ({type(e).__name__}: {str(e)[:200]}): "
                "restore it from the model's source or re-export the model"
            ) from None
        own = model.state_dict()
        _check_weights(d, state, own, set(model.trainable_state_dict()))
        model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)
        return model


_PART = re.compile(r"^(.*)#part(\d+)of(\d+)$")


def _split_large(state: dict[str, torch.Tensor], shard_mb: float) -> dict[str, torch.Tensor]:
    """Tensors larger than a shard cut into row blocks (`key#part{i}of{n}`), so no weight file passes shard_mb."""
    out: dict[str, torch.Tensor] = {}
    limit = shard_mb * 1024 * 1024
    for k, v in state.items():
        nbytes = v.numel() * v.element_size()
        if nbytes <= limit or v.dim() == 0 or v.shape[0] < 2:
            out[k] = v
            continue
        n = min(v.shape[0], math.ceil(nbytes / limit))
        for i, block in enumerate(torch.tensor_split(v, n, dim=0)):
            out[f"{k}#part{i}of{n}"] = block.contiguous()
    return out


def _join_parts(state: dict[str, torch.Tensor], d: Path) -> dict[str, torch.Tensor]:
    """Reassemble `key#part{i}of{n}` row blocks written by `_split_large`; a missing block is refused."""
    parts: dict[str, dict[int, torch.Tensor]] = {}
    counts: dict[str, int] = {}
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        m = _PART.match(k)
        if m is None:
            out[k] = v
            continue
        parts.setdefault(m.group(1), {})[int(m.group(2))] = v
        counts[m.group(1)] = int(m.group(3))
    for key, blocks in parts.items():
        if sorted(blocks) != list(range(counts[key])):
            raise SeqChatInputError(f"'{d}' lacks part of the tensor {key}: the model folder is incomplete")
        out[key] = torch.cat([blocks[i] for i in range(counts[key])], dim=0)
    return out


def _read_weights(d: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a model folder's safetensors shards; a missing, corrupt or truncated shard is refused."""
    from safetensors import SafetensorError

    files = sorted(d.glob("model*.safetensors"))
    if not files:
        raise SeqChatInputError(f"'{d}' holds no model*.safetensors weights: the model folder is incomplete")
    declared = {int(f.stem.rsplit("-of-", 1)[1]) for f in files if "-of-" in f.stem}
    if declared:
        n = max(declared)
        missing = [f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)
                   if not (d / f"model-{i:05d}-of-{n:05d}.safetensors").exists()]  # fmt: skip
        if missing:
            raise SeqChatInputError(
                f"'{d}' lacks weight shard(s) {', '.join(missing)}: the model folder is incomplete"
            )
    state: dict[str, torch.Tensor] = {}
    for f in files:
        try:
            state.update(load_file(str(f)))
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise SeqChatInputError(
                f"'{f}' is not a readable safetensors file ({str(e)[:160]}): it is corrupt or truncated; "
                "copy the model folder again"
            ) from None
    return _join_parts(state, d)


def _check_weights(d: Path, state: dict[str, torch.Tensor], own: dict[str, torch.Tensor], needed: set[str]) -> None:
    """Refuse weights that do not fit the model the config builds, naming the keys."""

    def few(keys: list[str]) -> str:
        return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")

    problems = []
    if unexpected := sorted(k for k in state if k not in own):
        problems.append(f"unexpected keys {few(unexpected)}")
    if missing := sorted(needed - set(state)):
        problems.append(f"missing keys {few(missing)}")
    if misshapen := [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state.items()
                     if k in own and v.shape != own[k].shape]:  # fmt: skip
        problems.append(f"shape mismatches {few(misshapen)}")
    if nonfinite := sorted(k for k, v in state.items() if v.is_floating_point() and not bool(v.isfinite().all())):
        problems.append(f"non-finite (NaN or inf) values in {few(nonfinite)}")
    if problems:
        raise SeqChatInputError(
            f"'{d}': the weights do not match its config.json: {'; '.join(problems)}; "
            "the folder is damaged or from another model version: re-export or copy it again"
        )
