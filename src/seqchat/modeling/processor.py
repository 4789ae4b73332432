"""SeqChatProcessor: chat messages + named sequences → decoder ids with K placeholders per reference,
encoder windows per sequence, question ids per reference, attention masks and answer-only labels."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from collections.abc import Sequence as Seq
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch

from seqchat.errors import SeqChatInputError
from seqchat.modeling.config import SeqChatConfig
from seqchat.modeling.projectors import projector_class
from seqchat.modeling.sequences import Sequence, as_sequence, check_modality
from seqchat.modeling.tokenization import get_sequence_tokenizer, split_windows, window_starts

IGNORE_INDEX = -100

# A name a message can refer to: a letter (any script), digit or _, then those or . : | -
NAME_PATTERN = r"\w[\w.:|\-]*"
# `<dna>`, `<rna>`, `<protein>` take the next sequence in order; `@name` takes the sequence so named.
# `@` must not follow a word character, so e-mail addresses are not references.
REFERENCE = re.compile(rf"<(dna|rna|protein)>|(?<![\w@.])@({NAME_PATTERN})")
_WHOLE_NAME = re.compile(rf"^{NAME_PATTERN}$")
ROLES = ("system", "user", "assistant")

Message = Mapping[str, str]
Sequences = Mapping[str, Sequence | str] | Seq[Sequence | str]


@dataclass
class _Occurrence:
    """One reference to a sequence inside a user message."""

    key: str  # unique-sequence key in the batch
    question: str


def check_reference_name(name: str) -> str:
    """Return a sequence name that messages can refer to as @name, or raise saying which characters work."""
    if not isinstance(name, str) or not _WHOLE_NAME.match(name):
        raise SeqChatInputError(
            f"sequence name '{str(name)[:40]}' cannot be referred to as @name: start with a letter, digit or _ "
            "and use only letters, digits and _ . : | -"
        )
    return name


def check_messages(messages: Any) -> list[dict[str, str]]:
    """A conversation as a list of {'role', 'content'} dicts, or one clear error naming the bad message."""
    if isinstance(messages, (str, bytes, Mapping)) or not isinstance(messages, Seq):
        raise SeqChatInputError(
            "messages must be a list of {'role': ..., 'content': ...} dicts, "
            f"got {type(messages).__name__}"
        )
    out = []
    for turn, msg in enumerate(messages):
        if not isinstance(msg, Mapping) or "role" not in msg or "content" not in msg:
            raise SeqChatInputError(f"message {turn + 1} must be a dict with 'role' and 'content'")
        role, content = msg["role"], msg["content"]
        if role not in ROLES:
            raise SeqChatInputError(f"message {turn + 1} has role '{role}'; use system, user or assistant")
        if not isinstance(content, str):
            raise SeqChatInputError(f"message {turn + 1}: content must be text, got {type(content).__name__}")
        out.append({"role": role, "content": content})
    return out


def _ordered_sequences(sequences: Sequences | None) -> dict[str, Sequence]:
    if sequences is None:
        return {}
    if isinstance(sequences, Mapping):
        return {name: as_sequence(v, name) for name, v in sequences.items()}
    if isinstance(sequences, (str, Sequence)):
        sequences = [sequences]
    out: dict[str, Sequence] = {}
    for i, v in enumerate(sequences):
        s = as_sequence(v, v.name if isinstance(v, Sequence) else f"seq{i + 1}")
        if s.name in out:
            raise SeqChatInputError(f"two sequences share the name '{s.name}'; names must be unique")
        out[s.name] = s
    return out


def referenced_subset(messages: Seq[Message], pool: Mapping[str, Sequence]) -> dict[str, Sequence]:
    """The sequences of a pool (e.g. a whole FASTA file) that the user turns refer to by @name.

    With positional tags present the whole pool is kept, since tags take sequences in order.
    """
    texts = [m["content"] for m in check_messages(messages) if m["role"] != "assistant"]
    matches = [m for t in texts for m in REFERENCE.finditer(t)]
    if any(m.group(1) for m in matches):
        return dict(pool)
    wanted: set[str] = set()
    for m in matches:
        name = m.group(2)
        while name not in pool and name and name[-1] in ".:|-":
            name = name[:-1]
        wanted.add(name if name in pool else m.group(2))
    return {n: s for n, s in pool.items() if n in wanted}


def sequence_key(encoder: str, residues: str) -> str:
    """Stable key for caching one sequence's encoder output."""
    return f"{encoder}:{hashlib.sha1(residues.encode()).hexdigest()}"


class SeqChatProcessor:
    """Turns conversations about sequences into model inputs (llava-style placeholder expansion)."""

    def __init__(self, tokenizer: Any, config: SeqChatConfig):
        self.config = config
        self.tokenizer = tokenizer
        if config.placeholder_token not in tokenizer.get_vocab():
            tokenizer.add_tokens([config.placeholder_token], special_tokens=True)
        self.placeholder_id = tokenizer.convert_tokens_to_ids(config.placeholder_token)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.seq_tokenizers = {name: get_sequence_tokenizer(e["tokenizer"]) for name, e in config.encoders.items()}
        # prompts longer than the decoder's context are refused; the model sets the exact figure
        self.context_length: int | None = (config.decoder_config or {}).get("max_position_embeddings")
        self._projector_cls = projector_class(config.projector)

    # ---- references -------------------------------------------------------------------------
    def num_tokens(self, encoder: str, length: int) -> int:
        """How many placeholder tokens a sequence of this length occupies."""
        e = self.config.encoders[encoder]
        n_windows = len(window_starts(length, e["window"], e["overlap"]))
        return self._projector_cls.num_tokens_for(self.config.projector, n_windows)

    def _expand(
        self, conversation: Seq[Message], named: dict[str, Sequence]
    ) -> tuple[list[dict[str, str]], list[tuple[Sequence, str]]]:
        """Replace references in user/system turns by placeholder runs; return messages and (seq, question)."""
        conversation = check_messages(conversation)
        # positional tags take, in order, the sequences of their modality that no @name refers to
        by_name = {
            self._lookup(m, named, t)[0].name
            for t, msg in enumerate(conversation)
            if msg["role"] != "assistant"
            for m in REFERENCE.finditer(msg["content"])
            if m.group(2)
        }
        queue = [s for s in named.values() if s.name not in by_name]
        used: set[str] = set()
        refs: list[tuple[Sequence, str]] = []
        out: list[dict[str, str]] = []
        placeholders = 0
        for turn, msg in enumerate(conversation):
            role, content = msg["role"], msg["content"]
            if self.config.placeholder_token in content:
                raise SeqChatInputError(
                    f"message {turn + 1} contains the reserved token {self.config.placeholder_token}; remove it"
                )
            if role == "assistant":  # answers may name sequences ("@a is the promoter") as plain text
                out.append({"role": role, "content": content})
                continue
            pieces: list[str] = []
            last = 0
            for m in REFERENCE.finditer(content):
                if m.group(1):
                    seq = self._next_positional(queue, check_modality(m.group(1)), turn)
                    end = m.end()
                else:
                    seq, end = self._lookup(m, named, turn)
                used.add(seq.name)
                pieces.append(content[last : m.start()])
                enc = self._encoder_for(seq)
                n = self.num_tokens(enc, len(seq))
                placeholders += n
                # counted as references expand, so a flood of them is refused before the text is built
                self._check_length(placeholders, f"its first {len(refs) + 1} sequence references take")
                pieces.append(self.config.placeholder_token * n)
                refs.append((seq, content))
                last = end
            pieces.append(content[last:])
            out.append({"role": role, "content": "".join(pieces)})
        unused = [n for n in named if n not in used]
        if unused:
            raise SeqChatInputError(
                f"sequence(s) {', '.join(unused)} never referenced: refer to them in a user message as "
                + ", ".join(f"@{n}" for n in unused)
            )
        if not any(m["role"] == "user" for m in out):
            raise SeqChatInputError("the conversation has no user message")
        return out, refs

    def _check_length(self, n_tokens: int, what: str = "the expanded prompt is") -> None:
        """Refuse a prompt past the decoder's context, naming the limit."""
        if self.context_length is not None and n_tokens > self.context_length:
            raise SeqChatInputError(
                f"prompt too long: {what} {n_tokens} tokens (each @reference expands to the sequence's "
                f"placeholder tokens); the decoder reads at most {self.context_length}: refer to fewer or "
                "shorter sequences, or start a new conversation"
            )

    def prompt_length(
        self,
        conversation: Seq[Message],
        sequences: Sequences | None = None,
        add_generation_prompt: bool = True,
        system_prompt: str | None = None,
    ) -> int:
        """Validate one conversation as `__call__` would and return its token count, without encoder windows."""
        system_prompt = system_prompt if system_prompt is not None else self.config.system_prompt
        ids, _, _ = self._prepare(conversation, sequences, add_generation_prompt, system_prompt)
        return len(ids)

    def _prepare(
        self, conv: Seq[Message], seqs: Sequences | None, add_generation_prompt: bool, system_prompt: str | None
    ) -> tuple[list[int], list[int], list[tuple[Sequence, str]]]:
        """Token ids, labels and references of one conversation, refused past the decoder's context."""
        named = _ordered_sequences(seqs)
        conv = check_messages(conv)
        if system_prompt and (not conv or conv[0]["role"] != "system"):
            conv = [{"role": "system", "content": system_prompt}] + conv
        messages, refs = self._expand(conv, named)
        ids, labels = self._tokenize_chat(messages, add_generation_prompt)
        self._check_length(len(ids))
        return ids, labels, refs

    @staticmethod
    def _next_positional(queue: list[Sequence], modality: str, turn: int) -> Sequence:
        """Pop the first queued sequence of this modality (DNA and RNA stand in for each other)."""
        for ok in ({modality}, {"dna", "rna"} if modality in ("dna", "rna") else {modality}):
            for i, s in enumerate(queue):
                if s.modality in ok:
                    return queue.pop(i)
        left = ", ".join(f"{s.name} ({s.modality.upper()})" for s in queue) or "none"
        raise SeqChatInputError(
            f"<{modality}> in message {turn + 1} has no {modality.upper()} sequence left to take "
            f"(unreferenced sequences: {left}): pass one more {modality.upper()} sequence"
        )

    @staticmethod
    def _lookup(m: re.Match, named: dict[str, Sequence], turn: int) -> tuple[Sequence, int]:
        name = m.group(2)
        end = m.end()
        # trailing punctuation ("@seq1." / "@seq1:") belongs to the sentence, not the name
        while name not in named and name and name[-1] in ".:|-":
            name, end = name[:-1], end - 1
        if name not in named:
            avail = ", ".join(f"@{n}" for n in named) or "none"
            raise SeqChatInputError(
                f"message {turn + 1} refers to @{m.group(2)}, but no sequence has that name (available: {avail})"
            )
        return named[name], end

    def _encoder_for(self, seq: Sequence) -> str:
        enc = self.config.modalities.get(seq.modality)
        if enc is None:
            raise SeqChatInputError(
                f"sequence '{seq.name}' is {seq.modality.upper()}, but this model reads only "
                f"{', '.join(m.upper() for m in self.config.modalities)}"
            )
        if len(seq) > self.config.max_sequence_length:
            raise SeqChatInputError(
                f"sequence '{seq.name}' is {len(seq)} residues long; this model accepts at most "
                f"{self.config.max_sequence_length}: split it into shorter sequences"
            )
        return enc

    # ---- chat template and labels -----------------------------------------------------------
    @cached_property
    def end_of_turn_ids(self) -> list[int]:
        """Token ids the chat template puts right after an assistant answer (e.g. <|im_end|>)."""
        probe = "SEQCHAT_PROBE_ANSWER"
        text = self._render([{"role": "user", "content": "q"}, {"role": "assistant", "content": probe}])
        ids = self._ids(text.split(probe, 1)[1].rstrip())
        return ids or [self.tokenizer.eos_token_id]

    def _render(self, messages: list[dict[str, str]], gen: bool = False) -> str:
        if not messages:
            return ""
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def _tokenize_chat(
        self, messages: list[dict[str, str]], add_generation_prompt: bool
    ) -> tuple[list[int], list[int]]:
        """Token ids and labels; only assistant answers (and their end-of-turn token) are labelled."""
        ids: list[int] = []
        labels: list[int] = []
        prev = ""
        for i, msg in enumerate(messages):
            full = self._render(messages[: i + 1])
            if not full.startswith(prev):
                raise SeqChatInputError("the decoder's chat template is not incremental; seqchat needs one that is")
            segment = full[len(prev) :]
            if msg["role"] == "assistant":
                header = self._render(messages[:i], gen=True)[len(prev) :] if i else ""
                if not segment.startswith(header):
                    raise SeqChatInputError("the decoder's chat template renders answers unexpectedly")
                answer = segment[len(header) :]
                labelled = answer.rstrip()
                parts = [(header, False), (labelled, True), (answer[len(labelled) :], False)]
            else:
                parts = [(segment, False)]
            for text, train in parts:
                t = self._ids(text)
                ids += t
                labels += t if train else [IGNORE_INDEX] * len(t)
            prev = full
        if add_generation_prompt:
            t = self._ids(self._render(messages, gen=True)[len(prev) :])
            ids += t
            labels += [IGNORE_INDEX] * len(t)
        return ids, labels

    # ---- main entry -------------------------------------------------------------------------
    def __call__(
        self,
        conversations: Seq[Seq[Message]] | Seq[Message],
        sequences: Seq[Sequences | None] | Sequences | None = None,
        add_generation_prompt: bool = False,
        padding_side: str = "right",
        system_prompt: str | None = None,
    ) -> dict[str, Any]:
        """Process one conversation or a batch of them (with one sequence collection per conversation)."""
        if conversations and isinstance(conversations[0], Mapping):  # a single conversation
            conversations, sequences = [conversations], [sequences]
        if sequences is None:
            sequences = [None] * len(conversations)
        if len(sequences) != len(conversations):
            raise SeqChatInputError(f"{len(conversations)} conversations but {len(sequences)} sequence collections")
        system_prompt = system_prompt if system_prompt is not None else self.config.system_prompt

        rows: list[tuple[list[int], list[int]]] = []
        occurrences: list[_Occurrence] = []
        unique: dict[str, tuple[str, Sequence]] = {}  # key -> (encoder, sequence)
        occurrence_rows: list[int] = []
        for row, (conv, seqs) in enumerate(zip(conversations, sequences, strict=True)):
            ids, labels, refs = self._prepare(conv, seqs, add_generation_prompt, system_prompt)
            rows.append((ids, labels))
            occurrence_rows += [row] * len(refs)
            for seq, question in refs:
                enc = self._encoder_for(seq)
                key = sequence_key(enc, seq.residues)
                unique.setdefault(key, (enc, seq))
                occurrences.append(_Occurrence(key, question))

        batch = self._pad_rows(rows, padding_side)
        expected = sum(self.num_tokens(unique[o.key][0], len(unique[o.key][1])) for o in occurrences)
        found = int((batch["input_ids"] == self.placeholder_id).sum())
        if found != expected:
            raise SeqChatInputError(f"internal placeholder mismatch: {found} tokens for {expected} expected")
        batch.update(self._sequence_inputs(unique, occurrences))
        batch["occurrence_rows"] = occurrence_rows  # the conversation (batch row) of each sequence reference
        return batch

    def _pad_rows(self, rows: list[tuple[list[int], list[int]]], side: str) -> dict[str, torch.Tensor]:
        if side not in ("left", "right"):
            raise ValueError("padding_side must be 'left' or 'right'")
        longest = max(len(r[0]) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(rows), longest), pad, dtype=torch.long)
        lab = torch.full((len(rows), longest), IGNORE_INDEX, dtype=torch.long)
        att = torch.zeros((len(rows), longest), dtype=torch.long)
        for b, (i, lbl) in enumerate(rows):
            sl = slice(longest - len(i), longest) if side == "left" else slice(0, len(i))
            ids[b, sl] = torch.tensor(i, dtype=torch.long)
            lab[b, sl] = torch.tensor(lbl, dtype=torch.long)
            att[b, sl] = 1
        return {"input_ids": ids, "attention_mask": att, "labels": lab}

    def _sequence_inputs(self, unique: dict[str, tuple[str, Sequence]], occ: list[_Occurrence]) -> dict[str, Any]:
        """Encoder windows per encoder, plus per-reference pointers and question ids."""
        per_encoder: dict[str, dict[str, Any]] = {}
        local: dict[str, int] = {}
        for key, (enc, seq) in unique.items():
            e = self.config.encoders[enc]
            d = per_encoder.setdefault(enc, {"keys": [], "windows": [], "window_to_seq": []})
            local[key] = len(d["keys"])
            d["keys"].append(key)
            for w in split_windows(seq.residues, e["window"], e["overlap"]):
                d["windows"].append(self.seq_tokenizers[enc].encode(w))
                d["window_to_seq"].append(local[key])
        sequence_inputs = {}
        for enc, d in per_encoder.items():
            tok = self.seq_tokenizers[enc]
            longest = max(len(w) for w in d["windows"])
            ids = torch.full((len(d["windows"]), longest), tok.pad_token_id, dtype=torch.long)
            for i, w in enumerate(d["windows"]):
                ids[i, : len(w)] = torch.tensor(w)
            att = (ids != tok.pad_token_id).long()
            content = torch.ones_like(ids, dtype=torch.bool)
            for sid in tok.special_ids:
                content &= ids != sid
            sequence_inputs[enc] = {
                "input_ids": ids,
                "attention_mask": att,
                "content_mask": content,
                "window_to_seq": torch.tensor(d["window_to_seq"], dtype=torch.long),
                "keys": d["keys"],
            }
        q_rows = [self._ids(o.question) or [self.tokenizer.pad_token_id] for o in occ]
        q_len = max((len(q) for q in q_rows), default=1)
        q_ids = torch.full((len(occ), q_len), self.tokenizer.pad_token_id, dtype=torch.long)
        q_mask = torch.zeros((len(occ), q_len), dtype=torch.bool)
        for i, q in enumerate(q_rows):
            q_ids[i, : len(q)] = torch.tensor(q)
            q_mask[i, : len(q)] = True
        return {
            "sequence_inputs": sequence_inputs,
            "occurrences": [(unique[o.key][0], local[o.key]) for o in occ],
            "question_ids": q_ids,
            "question_mask": q_mask,
        }
