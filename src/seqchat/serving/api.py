"""The Python API: load a model once, ask questions about named sequences, predict tasks over many sequences."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from seqchat.errors import SeqChatInputError
from seqchat.modeling.hub import load_model
from seqchat.modeling.processor import REFERENCE, check_messages, referenced_subset
from seqchat.modeling.sequences import Sequence, as_named_sequences, read_fasta
from seqchat.serving.attribution import MAX_ATTRIBUTION_RESIDUES, Attribution, attribute, check_budget
from seqchat.serving.predict import class_task, prediction_rows, task_sequence, task_sequences
from seqchat.tasks.answers import parse_prediction
from seqchat.tasks.predict import load_calibrators, predict_task
from seqchat.tasks.registry import get_task
from seqchat.tasks.templates import system_prompt as default_system_prompt

if TYPE_CHECKING:
    import pandas as pd

Pool = Mapping[str, Sequence | str]


class Answer(str):
    """An answer's text (it is a `str`) with its confidence and, for a classification task, class probabilities.

    `confidence`: the geometric mean of the probabilities of the answer's tokens as the model chose them
    (the end of turn included), in [0, 1].
    `probabilities`: {class: P} from ChatNT-style candidate scoring when a binary/multi-class task is given.
    `probability`: P of the class the answer states, when a task is given and the answer names a class.
    `attribution`: per-residue gradient × input scores of each referenced sequence, when asked for.
    `prompt_tokens`, `completion_tokens` (the stop token included) and `finish_reason` ("stop": the model
    ended its turn, "length": `max_new_tokens` ran out) are set by `chat_batch`.
    """

    confidence: float | None
    probability: float | None
    probabilities: dict[Any, float] | None
    attribution: list[Attribution] | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None

    def __new__(
        cls,
        text: str,
        confidence: float | None = None,
        probabilities: dict[Any, float] | None = None,
        probability: float | None = None,
        attribution: list[Attribution] | None = None,
    ) -> Answer:
        obj = super().__new__(cls, text)
        obj.confidence, obj.probabilities, obj.probability = confidence, probabilities, probability
        obj.attribution = attribution
        return obj

    @property
    def text(self) -> str:
        """The answer as a plain string."""
        return str.__str__(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (class keys as strings)."""
        return {
            "answer": self.text,
            "confidence": self.confidence,
            "probability": self.probability,
            "probabilities": None
            if self.probabilities is None
            else {str(k): v for k, v in self.probabilities.items()},
            "attribution": None if self.attribution is None else [a.to_dict() for a in self.attribution],
        }


def text_streamer(tokenizer: Any, stream: Callable[[str], None], max_tokens: int) -> Callable[[int], None]:
    """A per-token callback for `generate` that passes `stream` the new text of each of the first `max_tokens`."""
    tokens: list[int] = []
    printed = [""]

    def on_token(t: int) -> None:
        # a batch row with a smaller limit keeps generating while longer rows finish; its answer stops here
        if len(tokens) >= max_tokens:
            return
        tokens.append(t)
        # leading blanks are dropped, as from the final answer; a multi-byte character split over
        # tokens is printed once it is whole
        text = tokenizer.decode(tokens, skip_special_tokens=True).lstrip()
        if text and not text.endswith("\ufffd"):
            stream(text[len(printed[0]) :])
            printed[0] = text

    return on_token


class SeqChat:
    """A loaded seqchat model with a chat-style interface."""

    def __init__(
        self, model: Any, system_prompt: str | None = None, calibrators: Mapping[str, Any] | None = None
    ):
        self.model = model.eval()
        # per-task Platt calibrators that `seqchat eval --save-calibration` stored with the model
        self.calibrators = dict(calibrators or {})
        # the system prompt the model was trained with comes first unless a conversation brings its own
        self.system_prompt = system_prompt if system_prompt is not None else (
            model.config.system_prompt or default_system_prompt()
        )  # fmt: skip

    @classmethod
    def load(
        cls,
        model: str | Path | None = None,
        config: str | Path | None = None,
        device: str | None = None,
        dtype: str | None = None,
    ) -> SeqChat:
        """Load a trained model folder, or build an (untrained) architecture from a config; default: shipped model.

        `device`: cpu (default), cuda, cuda:N, mps or auto; `dtype`: float32 (default), bfloat16 or float16.
        """
        loaded, folder = load_model(model, config, device=device, dtype=dtype)
        if folder is None:
            return cls(loaded)
        try:
            calibrators = load_calibrators(folder)
        except SeqChatInputError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, OSError) as e:  # JSON syntax or fields
            raise SeqChatInputError(
                f"'{Path(folder) / 'calibration.json'}' is not a valid calibration file "
                f"({type(e).__name__}: {str(e)[:160]}): refit it with `seqchat eval --save-calibration` "
                "or delete it"
            ) from None
        return cls(loaded, calibrators=calibrators)

    # ---- argument checks ----------------------------------------------------------------------
    @staticmethod
    def check_max_new_tokens(value: Any) -> int:
        """A positive whole number of tokens to generate."""
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SeqChatInputError(f"max_new_tokens must be a whole number of at least 1, got {value!r}")
        return value

    def check_request(
        self,
        messages: Any,
        sequences: Pool | Iterable | None,
        max_new_tokens: Any = 128,
        task: Any = None,
        attribution: bool = False,
        max_attribution_residues: int = MAX_ATTRIBUTION_RESIDUES,
    ) -> list[dict[str, str]]:
        """Everything about a chat request that can be wrong, found before any model work: the messages,
        names, references, prompt length (against the decoder's context), task, and attribution budget."""
        messages = check_messages(messages)
        if not messages or messages[-1]["role"] != "user":
            raise SeqChatInputError("the last message must be the user's question (role 'user')")
        self.check_max_new_tokens(max_new_tokens)
        class_task(task)
        named = self._referenced(messages, sequences)
        self.model.processor.prompt_length(messages, named, system_prompt=self.system_prompt)
        if task is not None:
            self._task_inputs(task, messages, sequences)
        if attribution:
            check_budget(self._named(messages, sequences), max_attribution_residues)
        return messages

    # ---- chat ---------------------------------------------------------------------------------
    def _referenced(self, messages: list[dict[str, str]], sequences: Pool | Iterable | None) -> Any:
        """A mapping is a pool (e.g. a FASTA file) of which only the named sequences are read."""
        if not isinstance(sequences, Mapping):
            return sequences
        pool = as_named_sequences(sequences)
        named = referenced_subset(messages, pool)
        for msg in messages:
            for m in REFERENCE.finditer(msg["content"]) if msg.get("role") != "assistant" else ():
                name = m.group(2)
                if name and name.rstrip(".:|-") not in named and name not in named:
                    avail = (
                        ", ".join(f"@{n}" for n in list(pool)[:20]) or "none: load or paste a sequence first"
                    )
                    raise SeqChatInputError(
                        f"no sequence is named @{name.rstrip('.:|-')} (available: {avail})"
                    )
        return named

    def _prompt(self, conversations: list[list[dict[str, str]]], pools: list[Any]) -> dict[str, Any]:
        seqs = [self._referenced(m, p) for m, p in zip(conversations, pools, strict=True)]
        return self.model.processor(
            conversations,
            seqs,
            add_generation_prompt=True,
            padding_side="left",
            system_prompt=self.system_prompt,
        )

    def chat_batch(
        self,
        conversations: list[list[dict[str, str]]],
        sequences: list[Pool | Iterable | None],
        max_new_tokens: int | list[int] = 128,
        streams: list[Callable[[str], None] | None] | None = None,
    ) -> list[Answer]:
        """Answer the last user turn of several conversations in one batched generation, with confidences;
        `streams[i]` (if not None) receives conversation i's text piece by piece as it is generated."""
        limits = (
            [max_new_tokens] * len(conversations) if isinstance(max_new_tokens, int) else list(max_new_tokens)
        )
        for n in limits:
            self.check_max_new_tokens(n)
        batch = self._prompt(conversations, sequences)
        tokenizer = self.model.processor.tokenizer
        row_streamers = None if streams is None else [
            None if s is None else text_streamer(tokenizer, s, n) for s, n in zip(streams, limits, strict=True)
        ]  # fmt: skip
        logprobs: list[list[float]] = []
        with torch.no_grad():
            tokens = self.model.generate(
                batch, max_new_tokens=max(limits), token_logprobs=logprobs, row_streamers=row_streamers
            )
        answers = []
        for t, lp, n, mask in zip(tokens, logprobs, limits, batch["attention_mask"], strict=True):
            a = self._answer(t[:n], lp[:n] if len(t) > n else lp)
            a.prompt_tokens = int(mask.sum())
            a.completion_tokens = min(len(lp), n)
            # generate() logs the stop token's probability but leaves the token out of `t`
            a.finish_reason = "stop" if len(t) < n and len(lp) > len(t) else "length"
            answers.append(a)
        return answers

    def _answer(self, tokens: list[int], logprobs: list[float]) -> Answer:
        """Decoded text; confidence = exp(mean log-probability of the chosen tokens, the end of turn included)."""
        text = self.model.processor.tokenizer.decode(tokens, skip_special_tokens=True).strip()
        return Answer(text, math.exp(sum(logprobs) / len(logprobs)) if logprobs else None)

    def chat(
        self,
        messages: list[dict[str, str]],
        sequences: Pool | Iterable | None = None,
        max_new_tokens: int = 128,
        stream: Callable[[str], None] | None = None,
        task: str | None = None,
        attribution: bool = False,
    ) -> Answer:
        """Answer the last user turn of a conversation; `stream` receives the text piece by piece."""
        messages = self.check_request(messages, sequences, max_new_tokens, task, attribution)
        batch = self._prompt([messages], [sequences])
        streamer = None if stream is None else text_streamer(self.model.processor.tokenizer, stream, max_new_tokens)
        logprobs: list[list[float]] = []
        with torch.no_grad():
            out = self.model.generate(
                batch, max_new_tokens=max_new_tokens, streamer=streamer, token_logprobs=logprobs
            )
        answer = self._answer(out[0], logprobs[0])
        return self.annotate(answer, messages, sequences, task, attribution)

    def annotate(
        self,
        answer: Answer,
        messages: list[dict[str, str]],
        sequences: Pool | Iterable | None,
        task: str | None = None,
        attribution: bool = False,
    ) -> Answer:
        """Add class probabilities (for a task) and per-residue attribution to an answer of this conversation."""
        if task is not None:
            answer.probabilities, answer.probability = self._class_probability(
                task, messages, sequences, answer.text
            )
        if attribution:
            answer.attribution = self.attribute(messages, answer.text, sequences)
        return answer

    def ask(
        self,
        question: str,
        sequences: Pool | Iterable | None = None,
        history: list[dict[str, str]] | None = None,
        max_new_tokens: int = 128,
        stream: Callable[[str], None] | None = None,
        task: str | None = None,
        attribution: bool = False,
    ) -> Answer:
        """Answer one question (with an optional earlier conversation) about the given sequences.

        A mapping of sequences is a pool (e.g. a FASTA file): only those the conversation names are read.
        With `task` (a binary or multi-class task name) the answer also carries class probabilities.
        """
        if not isinstance(question, str):
            raise SeqChatInputError(f"question must be text, got {type(question).__name__}")
        messages = check_messages(history or []) + [{"role": "user", "content": question}]
        return self.chat(messages, sequences, max_new_tokens, stream, task, attribution)

    def _class_probability(
        self, task_name: str, messages: list[dict[str, str]], sequences: Any, text: str
    ) -> tuple[dict[Any, float], float | None]:
        """Class probabilities of the one sequence the question is about, and that of the class the answer states."""
        probs = predict_task(
            self.model, task_name, self._task_inputs(task_name, messages, sequences), mode="score",
            question_index=None,
            calibrator=self.calibrators.get(task_name),
        )[0].probabilities  # fmt: skip
        stated = parse_prediction(task_name, text)
        return probs, (probs.get(stated) if stated is not None else None)

    @staticmethod
    def _named(messages: list[dict[str, str]], sequences: Any) -> dict[str, Sequence]:
        """The sequences a conversation is about: the referenced ones of a pool, or all of a list."""
        if isinstance(sequences, Mapping):
            return referenced_subset(messages, as_named_sequences(sequences))
        return as_named_sequences(sequences or [])

    def _task_inputs(self, task_name: str, messages: list[dict[str, str]], sequences: Any) -> list[Any]:
        """The one input a question with a task is about, checked against the task: a sequence, or a pair
        task's (first, second) in role order."""
        task = get_task(class_task(task_name))
        named = self._named(messages, sequences)
        if len(named) != len(task.inputs):
            need = f"two sequences ({' and '.join(task.roles)})" if task.is_pair else "one sequence"
            raise SeqChatInputError(
                f"class probabilities for '{task_name}' need a question about exactly {need}; "
                f"this one refers to {len(named)}"
            )
        limit = self.model.config.max_sequence_length
        if not task.is_pair:
            (seq,) = named.values()
            return [task_sequence(task_name, seq, seq.name, limit)]
        # a sequence named after a role, or the only one of a role's modality, takes that role; else given order
        rest = list(named.values())
        pair = [named.get(r) or next((x for x in rest if x.modality == m and
                                      sum(y.modality == m for y in rest) == 1), None)
                for r, m in zip(task.roles, task.inputs, strict=True)]  # fmt: skip
        left = [x for x in rest if x not in pair]
        chosen = [x if x is not None else left.pop(0) for x in pair]
        return [tuple(task_sequence(task_name, x, x.name, limit, m) for x, m in zip(chosen, task.inputs, strict=True))]

    def attribute(
        self,
        messages: list[dict[str, str]] | str,
        answer: str,
        sequences: Pool | Iterable | None,
        max_residues: int = MAX_ATTRIBUTION_RESIDUES,
    ) -> list[Attribution]:
        """Gradient × input scores per residue of each sequence the conversation refers to, for this answer."""
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        convo = check_messages(messages)
        if self.system_prompt and (not convo or convo[0].get("role") != "system"):
            convo = [{"role": "system", "content": self.system_prompt}] + convo
        if not isinstance(sequences, Mapping):  # positional sequences, named as the processor names them
            sequences = {
                (s.name if isinstance(s, Sequence) else f"seq{i + 1}"): s
                for i, s in enumerate(sequences or [])
            }
        return attribute(self.model, convo, answer, sequences, max_residues)

    # ---- tasks --------------------------------------------------------------------------------
    def predict(
        self,
        task: str,
        sequences: Pool | Iterable[Sequence | str],
        batch_size: int = 16,
        mode: str = "auto",
        question_index: int | None = None,
        max_new_tokens: int = 48,
    ) -> pd.DataFrame:
        """One row per sequence: the task's prediction, class probabilities (classification) and the answer text."""
        import pandas as pd

        ids, seqs = task_sequences(task, sequences, self.model.config.max_sequence_length)
        rows = prediction_rows(
            self.model,
            task,
            ids,
            seqs,
            batch_size,
            mode,
            question_index,
            max_new_tokens,
            self.calibrators.get(task),
        )
        return pd.DataFrame(rows).set_index("id")

    @staticmethod
    def read_fasta(path: str | Path, modality: str | None = None) -> dict[str, Sequence]:
        """Named sequences from a FASTA file, keyed by record id."""
        return {s.name: s for s in read_fasta(path, modality)}
