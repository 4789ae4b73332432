"""The HTTP API's request and response bodies (pydantic), its limits and its error bodies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from seqchat.serving.attribution import MAX_ATTRIBUTION_RESIDUES

# Host headers answered by default: a web page on another name (DNS rebinding) cannot reach the API
LOCAL_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
OPENAI_PATHS: tuple[str, ...] = ("/v1/chat/completions", "/v1/models")  # see openai_compat.py


@dataclass
class Limits:
    """What one request may ask for; anything beyond is refused with a JSON error naming the limit."""

    max_body_bytes: int = 2_000_000
    max_sequences: int = 64
    max_sequence_length: int = 20_000
    max_messages: int = 64
    max_message_chars: int = 8_000
    max_new_tokens: int = 256
    max_predict_sequences: int = 1_000
    max_queue: int = 512
    max_batch: int = 32
    predict_chunk: int = 8  # sequences predicted between two chat batches
    max_attribution_residues: int = MAX_ATTRIBUTION_RESIDUES
    request_timeout_s: float = 300.0
    disconnect_poll_s: float = 0.5  # how often a waiting request checks that its client is still there


class Message(BaseModel):
    """One chat turn."""

    role: Literal["system", "user", "assistant"]
    content: str


class NamedSequence(BaseModel):
    """A sequence and the name messages refer to it by (`@name`)."""

    name: str = Field(description="referred to in messages as @name")
    sequence: str = Field(description="residues (whitespace ignored)")
    modality: Literal["dna", "rna", "protein"] | None = Field(
        None, description="guessed from the letters if absent"
    )


Sequences = list[NamedSequence] | dict[str, str]


class ChatRequest(BaseModel):
    """A conversation whose last message is the user's question, with the sequences it names."""

    model_config = ConfigDict(extra="forbid")  # a misspelt or unsupported field is an error, not ignored

    messages: list[Message]
    sequences: Sequences = Field(default_factory=list)
    max_new_tokens: int = Field(128, ge=1)
    task: str | None = Field(None, description="a binary/multi-class task: adds class probabilities")
    attribution: bool = Field(False, description="add per-residue gradient × input scores")


class AttributionOut(BaseModel):
    """Per-residue scores of one sequence (positive: the residue makes the answer more likely)."""

    name: str
    modality: str
    scores: list[float]


class ChatResponse(BaseModel):
    """The answer with its confidence and, on request, class probabilities and attribution."""

    answer: str
    confidence: float | None = Field(None, description="geometric-mean token probability of the answer")
    probability: float | None = Field(
        None, description="probability of the class the answer states (with task)"
    )
    probabilities: dict[str, float] | None = None
    attribution: list[AttributionOut] | None = None


class PredictRequest(BaseModel):
    """One task over a list of sequences; a pair task over `pairs` (id -> {role: sequence}, roles from /v1/tasks)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt or unsupported field is an error, not ignored

    task: str
    sequences: Sequences = Field(default_factory=list)
    pairs: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="pair tasks: id -> {role: sequence}, e.g. {'p1': {'rna': ..., 'protein': ...}}",
    )
    mode: Literal["auto", "score", "generate"] = "auto"


class PredictResponse(BaseModel):
    """One row per sequence, with the columns of `seqchat predict`."""

    task: str
    columns: list[str]
    rows: list[dict[str, Any]]


class FastaRequest(BaseModel):
    """FASTA text (e.g. an uploaded file's content)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt or unsupported field is an error, not ignored

    fasta: str


class SequenceInfo(BaseModel):
    """A parsed sequence."""

    name: str
    modality: str
    length: int
    sequence: str


class ErrorResponse(BaseModel):
    """Every error: one message that says what to fix."""

    error: str


def error_content(path: str, status: int, message: str, param: str | None = None) -> dict[str, Any]:
    """An error body: `{"error": message}`, or OpenAI's `{"error": {message, type, param, code}}` on its paths."""
    if not any(path == p or path.startswith(p + "/") for p in OPENAI_PATHS):
        return {"error": message}
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}
