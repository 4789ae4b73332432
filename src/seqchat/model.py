"""SeqChatForConditionalGeneration: encoders → projector → scattered into a chat decoder's prompt."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from seqchat.config import SeqChatConfig
from seqchat.decoders import load_decoder, load_tokenizer
from seqchat.encoders import BUILTIN_ENCODERS, build_sequence_encoder, pad_pieces
from seqchat.errors import SeqChatInputError
from seqchat.processor import IGNORE_INDEX, SeqChatProcessor
from seqchat.projectors import build_projector

WEIGHTS_NAME = "model.safetensors"


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


def _build_decoder(config: SeqChatConfig) -> nn.Module:
    if config.decoder_config is not None:
        from transformers import AutoConfig, AutoModelForCausalLM

        cfg = dict(config.decoder_config)
        return AutoModelForCausalLM.from_config(AutoConfig.for_model(cfg.pop("model_type"), **cfg))
    return load_decoder(config.decoder)


class SeqChatForConditionalGeneration(nn.Module):
    """A chat decoder that reads sequences through per-modality encoders and a projector."""

    def __init__(self, config: SeqChatConfig, tokenizer: Any | None = None, encoders_from_config: set[str] = frozenset()):
        super().__init__()
        self.config = config
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(config.tokenizer_source)
        self.processor = SeqChatProcessor(tokenizer, config)
        self.decoder = _build_decoder(config)
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
                    r=lora.get("r", 8), lora_alpha=lora.get("alpha", 16), lora_dropout=lora.get("dropout", 0.05),
                    target_modules=lora.get("target_modules", ["q_proj", "v_proj"]), task_type="CAUSAL_LM",
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
            y = proj(name, seq, mask, question, q_mask[idx])
            for j, i in enumerate(idx):
                out[i] = y[j, : group[j].shape[0]] if proj.pool_windows else y[j]
        return out  # type: ignore[return-value]

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

    # ---- forward / loss -----------------------------------------------------------------------
    @staticmethod
    def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
        """Positions that skip left padding."""
        return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)

    def _shared_prefix(self, ids: torch.Tensor, att: torch.Tensor, labels: torch.Tensor | None) -> int:
        """Length of the token prefix every row shares (system prompt, chat header), or 0 if unusable.

        Only with a frozen decoder and no adapters: then the prefix's keys/values never change and can be
        computed once, which saves a third of the decoder work in training.
        """
        if not (self.prefix_cache_enabled and self.config.freeze_decoder and not self.config.lora):
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

    def _prefix_cache(self, prefix: torch.Tensor):

        key = tuple(prefix.tolist())
        if key not in self._prefix_kv:
            with torch.no_grad():
                out = self.decoder.get_decoder()(
                    input_ids=prefix[None].to(self.device), use_cache=True,
                    position_ids=torch.arange(len(key), device=self.device)[None],
                )  # fmt: skip
            self._prefix_kv[key] = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
            while len(self._prefix_kv) > 8:
                self._prefix_kv.pop(next(iter(self._prefix_kv)))
        return self._prefix_kv[key]

    def forward(self, batch: dict[str, Any], return_logits: bool = False) -> dict[str, torch.Tensor]:
        """Cross-entropy on answer tokens only; logits on request."""
        from transformers import DynamicCache

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
            kwargs["past_key_values"] = DynamicCache(ddp_cache_data=[(k.expand(b, -1, -1, -1), v.expand(b, -1, -1, -1))
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
    ) -> list[list[int]]:
        """Greedy (or sampled) decoding; with use_cache=False every step recomputes the whole window (ChatNT).

        stop_at_eos=False always produces max_new_tokens tokens (benchmarks). An empty list passed as
        `token_logprobs` receives, per row, the log-probability of each chosen token (the stop token included).
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
                past_key_values=cache, use_cache=use_cache, logits_to_keep=1,
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
            if bool(done.all()):
                break
            new_pos = step_pos[:, -1:] + 1
            att = torch.cat([att, torch.ones_like(att[:, :1])], dim=1)
            if use_cache:
                cache = out.past_key_values
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

        The prompt (processed with add_generation_prompt=True, batch of one) runs once; its KV cache is
        repeated across all candidates, which are scored together in one padded pass.
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
        Each prompt runs once; its KV cache is repeated across its candidates.
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
        tok = self.processor.tokenizer
        cand = [tok(c, add_special_tokens=False)["input_ids"] + self.processor.end_of_turn_ids for cs in lists for c in cs]
        att = batch["attention_mask"].to(self.device)
        out = self.decoder(
            inputs_embeds=self.embed_inputs(batch), attention_mask=att, position_ids=self.position_ids(att),
            use_cache=True, logits_to_keep=1,
        )  # fmt: skip
        first_logp = torch.log_softmax(out.logits[:, -1].float(), -1).repeat_interleave(n, 0)  # (P*C, V)
        cache = out.past_key_values
        cache.batch_repeat_interleave(n)
        rows, longest = len(cand), max(len(c) for c in cand)
        ids = torch.full((rows, longest), tok.pad_token_id, dtype=torch.long, device=self.device)
        mask = torch.zeros((rows, longest), dtype=torch.long, device=self.device)
        for i, c in enumerate(cand):
            ids[i, : len(c)] = torch.tensor(c)
            mask[i, : len(c)] = 1
        start = self.position_ids(att)[:, -1].repeat_interleave(n) + 1
        out2 = self.decoder(
            input_ids=ids, attention_mask=torch.cat([att.repeat_interleave(n, 0), mask], dim=1),
            position_ids=start[:, None] + torch.arange(longest, device=self.device), past_key_values=cache,
            use_cache=True,
        )  # fmt: skip
        logits = out2.logits[:, :-1].float()  # predicts candidate tokens 2..L
        rest = logits.gather(2, ids[:, 1:, None]).squeeze(-1) - torch.logsumexp(logits, -1)
        token_logp = torch.cat([first_logp.gather(1, ids[:, :1]), rest], dim=1) * mask
        mean = (token_logp.sum(1) / mask.sum(1)).view(n_prompts, n)
        return {"mean_logprob": mean, "perplexity": torch.exp(-mean), "num_tokens": mask.sum(1).view(n_prompts, n)}

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
        state = {k: v.detach().to(dtype or v.dtype).contiguous().cpu() for k, v in self.trainable_state_dict().items()}
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
        for k, v in state.items():
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
        """Rebuild from a folder written by save_pretrained (base decoder/encoders from their sources)."""
        d = Path(directory)
        if not (d / "config.json").exists():
            raise SeqChatInputError(f"'{d}' is not a seqchat model folder (no config.json)")
        config = SeqChatConfig.from_file(d / "config.json")
        state: dict[str, torch.Tensor] = {}
        for f in sorted(d.glob("model*.safetensors")):
            state.update(load_file(str(f)))
        saved_encoders = {n for n in config.encoders if any(k.startswith(f"encoders.{n}.") for k in state)}
        model = cls(config, tokenizer=tokenizer, encoders_from_config=saved_encoders)
        own = model.state_dict()
        unknown = [k for k in state if k not in own]
        if unknown:
            raise SeqChatInputError(f"'{d}': weights do not match the config (e.g. {unknown[:3]})")
        model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)
        return model
