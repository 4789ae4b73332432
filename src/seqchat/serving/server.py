"""`seqchat serve`: an HTTP API (FastAPI) and a web chat page over one loaded model.

One worker thread owns the model. Requests wait in a bounded queue; the worker takes every request that
arrived while the previous batch ran (up to `max_batch`) and answers them together: chat questions in one
left-padded batched generation, predictions of one task in one `predict_task` call. Requests carry their
sequences inline and never name files on the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

import torch
from pydantic import BaseModel, Field
from starlette.requests import Request  # at module level: FastAPI resolves endpoint annotations here

from seqchat.errors import SeqChatInputError
from seqchat.modeling.processor import check_reference_name
from seqchat.modeling.sequences import Sequence, infer_modality, make_sequence, read_fasta
from seqchat.serving.attribution import MAX_ATTRIBUTION_RESIDUES
from seqchat.serving.predict import prediction_columns, prediction_rows, task_input
from seqchat.tasks.registry import get_task

log = logging.getLogger("seqchat.serve")
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


# ---- request and response bodies --------------------------------------------------------------


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

    task: str
    sequences: Sequences = Field(default_factory=list)
    pairs: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="pair tasks: id -> {role: sequence}, e.g. {'p1': {'rna': ..., 'protein': ...}}"
    )
    mode: Literal["auto", "score", "generate"] = "auto"


class PredictResponse(BaseModel):
    """One row per sequence, with the columns of `seqchat predict`."""

    task: str
    columns: list[str]
    rows: list[dict[str, Any]]


class FastaRequest(BaseModel):
    """FASTA text (e.g. an uploaded file's content)."""

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


# ---- the batching worker ----------------------------------------------------------------------


@dataclass
class _Job:
    kind: str  # "chat" or "predict"
    payload: dict[str, Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    queued_at: float = field(default_factory=time.perf_counter)
    rows: list[dict[str, Any]] = field(default_factory=list)  # a predict job's finished rows, in order
    settled: bool = False  # answered (or failed) by the worker
    # a streamed chat job: called on the worker thread with each new piece of the answer's text
    on_text: Callable[[str], None] | None = None
    streamed: str = ""  # the text passed to on_text so far

    @property
    def left(self) -> int:
        """Sequences of a predict job not yet predicted."""
        return len(self.payload["ids"]) - len(self.rows) if self.kind == "predict" else 0


class ServerBusy(Exception):
    """The request queue is full."""


class ClientGone(Exception):
    """The client closed its connection before the answer was ready."""


class BatchingWorker:
    """Runs every model call on one thread, batching the requests that queued up meanwhile.

    Each cycle answers the chat requests that are waiting (up to `max_batch`) in one batch, then predicts
    one chunk of `predict_chunk` sequences of the waiting predict requests, so a long prediction never
    holds chats back by more than one chunk. Requests whose client timed out or went away are dropped,
    a prediction between two chunks.
    """

    def __init__(self, bot: Any, limits: Limits):
        self.bot = bot
        self.limits = limits
        self.jobs: queue.Queue[_Job | None] = queue.Queue()  # inbox; the worker sorts it into the two below
        self.chats: deque[_Job] = deque()
        self.predicts: deque[_Job] = deque()
        # the worker changes the two queues (and `pending`) under this lock, so /healthz can read them
        self.queue_lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self.pending = 0  # submitted and not yet settled; bounded by max_queue
        self.batches = 0
        self.answered = 0
        self.cancelled = 0
        self.predicted = 0

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="seqchat-worker", daemon=True)
                self.thread.start()

    def stop(self) -> None:
        """Let the worker finish its cycle and exit."""
        with self.lock:
            if self.thread is not None and self.thread.is_alive():
                self.jobs.put(None)
                self.thread.join(timeout=60)
            self.thread = None

    def depth(self) -> dict[str, int]:
        """What waits: chat requests, predict requests and the sequences those still have to predict."""
        with self.jobs.mutex, self.queue_lock:
            waiting = [j for j in (*self.jobs.queue, *self.chats, *self.predicts) if j is not None and not j.settled]
        chats = [j for j in waiting if j.kind == "chat"]
        predicts = [j for j in waiting if j.kind == "predict"]
        return {"chat": len(chats), "predict": len(predicts), "predict_sequences": sum(j.left for j in predicts)}

    def enqueue(self, kind: str, payload: dict[str, Any], on_text: Callable[[str], None] | None = None) -> _Job:
        """Queue a job (raises ServerBusy when the queue is full); its `future` gets the result."""
        self.start()
        loop = asyncio.get_running_loop()
        job = _Job(kind, payload, loop, loop.create_future(), on_text=on_text)
        with self.queue_lock:
            if self.pending >= self.limits.max_queue:
                raise ServerBusy(f"server busy: {self.limits.max_queue} requests are queued; retry shortly")
            self.pending += 1
        self.jobs.put(job)
        return job

    async def submit(
        self, kind: str, payload: dict[str, Any], disconnected: Callable[[], Awaitable[bool]] | None = None
    ) -> Any:
        """Queue a job and wait for its result (raises what the model call raised); a job whose wait times
        out, or whose client disconnects (`disconnected` says so), is cancelled."""
        job = self.enqueue(kind, payload)
        deadline = job.queued_at + self.limits.request_timeout_s
        try:
            while True:
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise asyncio.TimeoutError
                done, _ = await asyncio.wait({job.future}, timeout=min(left, self.limits.disconnect_poll_s))
                if done:
                    return job.future.result()
                if disconnected is not None and await disconnected():
                    raise ClientGone
        finally:
            if not job.future.done():
                job.future.cancel()  # the worker drops it at its next step

    # -- worker thread --
    def _run(self) -> None:
        with torch.no_grad():
            while True:
                if not self._collect(block=not (self.chats or self.predicts)):
                    return
                self._drop_cancelled()
                if not (self.chats or self.predicts):
                    continue
                self.batches += 1
                with self.queue_lock:
                    chats = [self.chats.popleft() for _ in range(min(len(self.chats), self.limits.max_batch))]
                if chats:
                    self._guarded(chats, self._chat)
                    if not self._collect(block=False):  # told to stop while the batch ran
                        return
                    self._drop_cancelled()
                if self.predicts:
                    self._predict_step()

    def _collect(self, block: bool) -> bool:
        """Move the inbox into the chat and predict queues; False when told to stop."""
        try:
            job = self.jobs.get() if block else self.jobs.get_nowait()
        except queue.Empty:
            return True
        while True:
            if job is None:
                return False
            with self.queue_lock:
                (self.chats if job.kind == "chat" else self.predicts).append(job)
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                return True

    def _drop_cancelled(self) -> None:
        """Forget jobs that are answered, or that nobody waits for any more (timed out, client gone)."""
        for q in (self.chats, self.predicts):
            live = []
            for j in q:
                if not j.settled and j.future.done():
                    j.settled = True
                    self.cancelled += 1
                    self._settled()
                elif not j.settled:
                    live.append(j)
            with self.queue_lock:
                q.clear()
                q.extend(live)

    def _settled(self) -> None:
        with self.queue_lock:  # not self.lock: stop() holds that while it waits for this thread
            self.pending -= 1

    def _predict_step(self) -> None:
        """Predict one chunk: the next sequences of the first waiting request and of those queued behind it
        with the same task and mode (several small requests share a model call)."""
        head = self.predicts[0]
        key = (head.payload["task"], head.payload["mode"])
        parts: list[tuple[_Job, int, int]] = []  # (job, first, end)
        room = self.limits.predict_chunk
        for j in self.predicts:
            if room == 0:
                break
            if (j.payload["task"], j.payload["mode"]) == key:
                first = len(j.rows)
                end = min(len(j.payload["ids"]), first + room)
                parts.append((j, first, end))
                room -= end - first
        self._guarded_predict(parts)
        for j, _, _ in parts:
            if not j.settled and j.left == 0:
                self._finish(j, j.rows)
        # round robin: a long request goes behind the others after its chunk
        with self.queue_lock:
            self.predicts.rotate(-1)
        self._drop_cancelled()

    def _guarded_predict(self, parts: list[tuple[_Job, int, int]]) -> None:
        """Predict the chunk in one call; if that fails, per request so one bad request fails alone."""
        try:
            rows = self._predict_rows(parts)
        except Exception as e:
            if len(parts) == 1:
                self._finish(parts[0][0], error=e)
            else:
                for part in parts:
                    self._guarded_predict([part])
            return
        start = 0
        for j, a, b in parts:
            j.rows.extend(rows[start : start + b - a])
            start += b - a

    def _predict_rows(self, parts: list[tuple[_Job, int, int]]) -> list[dict[str, Any]]:
        task, mode = parts[0][0].payload["task"], parts[0][0].payload["mode"]
        ids = [i for j, a, b in parts for i in j.payload["ids"][a:b]]
        seqs = [s for j, a, b in parts for s in j.payload["sequences"][a:b]]
        rows = prediction_rows(
            self.bot.model, task, ids, seqs, mode=mode, calibrator=self.bot.calibrators.get(task)
        )
        self.predicted += len(rows)
        return rows

    def _guarded(self, jobs: list[_Job], fn: Callable[[list[_Job]], list[Any]]) -> None:
        """Run a batch; if it fails, rerun its jobs one by one so one bad request fails alone."""
        try:
            results = fn(jobs)
        except Exception as e:
            if len(jobs) == 1:
                self._finish(jobs[0], error=e)
                return
            for j in jobs:
                try:
                    self._finish(j, fn([j])[0])
                except Exception as e1:
                    self._finish(j, error=e1)
            return
        for j, r in zip(jobs, results, strict=True):
            if isinstance(r, Exception):
                self._finish(j, error=r)
            else:
                self._finish(j, r)

    def _finish(self, job: _Job, result: Any = None, error: BaseException | None = None) -> None:
        if job.settled:  # cancelled meanwhile and already counted
            return
        job.settled = True
        self.answered += 1
        self._settled()

        def settle() -> None:
            if job.future.done():
                return
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(result)

        job.loop.call_soon_threadsafe(settle)

    def _chat(self, jobs: list[_Job]) -> list[Any]:
        p = [j.payload for j in jobs]
        streams = [_text_sink(j) for j in jobs]
        answers = self.bot.chat_batch(
            [x["messages"] for x in p], [x["sequences"] for x in p], [x["max_new_tokens"] for x in p], streams=streams
        )
        out: list[Any] = []
        for j, x, a in zip(jobs, p, answers, strict=True):
            try:  # a request whose extras fail fails alone, without regenerating the batch
                result = self.bot.annotate(a, x["messages"], x["sequences"], x["task"], x["attribution"]).to_dict()
            except Exception as e:
                out.append(e)
                continue
            if x.get("counts"):
                result.update(prompt_tokens=a.prompt_tokens, completion_tokens=a.completion_tokens,
                              finish_reason=a.finish_reason)  # fmt: skip
            if j.on_text is not None and a.text.startswith(j.streamed) and a.text != j.streamed:
                # what the stream held back (trailing blanks the answer keeps, text decoded only in full)
                j.on_text(a.text[len(j.streamed) :])
                j.streamed = a.text
            out.append(result)
        return out


def _text_sink(job: _Job) -> Callable[[str], None] | None:
    """The `chat_batch` stream of one generation of a streamed job: passes on the answer's new text.

    Trailing blanks are held back until more text follows, since the final answer is stripped; and when a
    failed batch is rerun job by job, the rerun's text is passed on only past what was already sent.
    """
    if job.on_text is None:
        return None
    on_text = job.on_text
    text = [""]

    def piece(p: str) -> None:
        text[0] += p
        visible = text[0].rstrip()
        if len(visible) > len(job.streamed) and not job.future.done():
            on_text(visible[len(job.streamed) :])
            job.streamed = visible

    return piece


# ---- the application --------------------------------------------------------------------------


class BodyLimit:
    """ASGI middleware: refuse request bodies over a size limit (declared or streamed) with a JSON 413."""

    def __init__(self, app: Any, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, scope: dict, send: Any) -> None:
        body = json.dumps(error_content(scope.get("path", ""), 413, f"request body over the {self.max_bytes} byte "
                                        "limit: send fewer or shorter sequences")).encode()  # fmt: skip
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        # the body is read here, up to the limit, and replayed to the app: a streamed (chunked) body
        # cannot slip past the limit, and the app never sees part of an oversized one
        chunks: list[bytes] = []
        seen = 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                return  # the client went away
            seen += len(msg.get("body", b""))
            if seen > self.max_bytes:
                await self._refuse(scope, send)
                return
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class HostCheck:
    """ASGI middleware: answer only requests whose Host header names an allowed host ('*' allows any)."""

    def __init__(self, app: Any, allowed: tuple[str, ...]):
        self.app = app
        self.allowed = {h.lower().strip("[]") for h in allowed}

    @staticmethod
    def hostname(header: str) -> str:
        """The host of a Host header, without port or IPv6 brackets."""
        header = header.strip().lower()
        if header.startswith("["):
            return header[1 : header.find("]")] if "]" in header else header
        return header.rsplit(":", 1)[0] if header.count(":") == 1 else header

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or "*" in self.allowed:
            await self.app(scope, receive, send)
            return
        host = self.hostname(dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1"))
        if host in self.allowed:
            await self.app(scope, receive, send)
            return
        body = json.dumps(error_content(scope.get("path", ""), 400,
                                        f"host '{host[:60]}' is not served; allowed: {', '.join(sorted(self.allowed))}"
                                        " (start the server with --allowed-host NAME to add one)")).encode()  # fmt: skip
        await send({"type": "http.response.start", "status": 400,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})


def _validation_message(errors: list[dict[str, Any]]) -> str:
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        if e.get("type") == "json_invalid":
            parts.append("the request body is not valid JSON")
        else:
            parts.append(f"{loc or 'body'}: {e.get('msg', 'invalid')}")
    return "; ".join(parts)


def create_app(
    bot: Any, limits: Limits | None = None, allowed_hosts: tuple[str, ...] = LOCAL_HOSTS, model_id: str = "seqchat"
) -> Any:
    """The FastAPI application serving `bot` (a loaded `SeqChat`, named `model_id` in the OpenAI-compatible
    endpoints) to requests for `allowed_hosts`."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse
    from starlette.exceptions import HTTPException

    from seqchat.serving.openai_compat import register_openai_routes, validation_error

    limits = limits or Limits()
    limits.max_sequence_length = min(limits.max_sequence_length, bot.model.config.max_sequence_length)
    worker = BatchingWorker(bot, limits)

    @asynccontextmanager
    async def lifespan(_app: Any):  # noqa: ANN202
        worker.start()
        yield
        worker.stop()

    app = FastAPI(
        title="seqchat",
        version=_version(),
        description="Chat about DNA, RNA and protein sequences; batch task prediction; answer attribution.",
        lifespan=lifespan,
        responses={
            400: {"model": ErrorResponse},
            413: {"model": ErrorResponse},
            503: {"model": ErrorResponse},
        },
    )
    app.state.worker = worker
    app.state.limits = limits
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    app.add_middleware(HostCheck, allowed=tuple(allowed_hosts))  # added last, so it runs first

    def error(r: Request, status: int, message: str, param: str | None = None) -> JSONResponse:
        return JSONResponse(status_code=status, content=error_content(r.url.path, status, message, param))

    @app.exception_handler(SeqChatInputError)
    async def _bad_input(r: Request, e: SeqChatInputError) -> JSONResponse:
        return error(r, 400, str(e))

    @app.exception_handler(RequestValidationError)
    async def _invalid(r: Request, e: RequestValidationError) -> JSONResponse:
        message = _validation_message(list(e.errors()))
        if r.url.path == "/v1/chat/completions":  # OpenAI answers a malformed request with a 400
            return error(r, 400, *validation_error(list(e.errors()), message))
        return error(r, 422, message)

    @app.exception_handler(HTTPException)
    async def _http(r: Request, e: HTTPException) -> JSONResponse:
        return error(r, e.status_code, str(e.detail))

    @app.exception_handler(ServerBusy)
    async def _busy(r: Request, e: ServerBusy) -> JSONResponse:
        return error(r, 503, str(e))

    @app.exception_handler(ClientGone)
    async def _gone(r: Request, _e: Exception) -> JSONResponse:
        return error(r, 499, "the client closed the connection; the request was cancelled")

    @app.exception_handler(asyncio.TimeoutError)
    async def _timeout(r: Request, _e: Exception) -> JSONResponse:
        return error(
            r, 504, f"no answer within {limits.request_timeout_s:.0f} s; the server is overloaded, retry later"
        )

    @app.exception_handler(Exception)
    async def _internal(r: Request, e: Exception) -> JSONResponse:
        log.exception("internal error")
        return error(r, 500, f"internal error ({type(e).__name__}); the server log has the details")

    def named_sequences(seqs: Sequences) -> dict[str, Sequence]:
        items = [(k, v, None) for k, v in seqs.items()] if isinstance(seqs, dict) else [
            (s.name, s.sequence, s.modality) for s in seqs
        ]  # fmt: skip
        if len(items) > limits.max_sequences:
            raise SeqChatInputError(
                f"{len(items)} sequences sent; the limit is {limits.max_sequences} per request"
            )
        out: dict[str, Sequence] = {}
        for name, residues, modality in items:
            check_reference_name(name)
            if name in out:
                raise SeqChatInputError(f"two sequences share the name '{name}'; names must be unique")
            out[name] = make_sequence(
                residues, modality or infer_modality(residues, name), name, limits.max_sequence_length
            )
        return out

    @app.get("/healthz", summary="liveness and queue state")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "queued": worker.pending,
            "queue": worker.depth(),
            "batches": worker.batches,
            "answered": worker.answered,
            "cancelled": worker.cancelled,
            "predicted": worker.predicted,
        }

    @app.get("/v1/tasks", summary="tasks this model can predict")
    async def tasks() -> list[dict[str, Any]]:
        from seqchat.tasks.registry import TASKS

        readable = set(bot.model.config.modalities)
        return [
            {"name": t.name, "title": t.title, "type": t.task_type, "modality": t.modality,
             "inputs": list(t.inputs), "roles": list(t.roles),
             "labels": {str(k): v for k, v in t.labels.items()}, "unit": t.unit or None,
             "columns": prediction_columns(t.name)}
            for t in TASKS.values() if set(t.inputs) <= readable
        ]  # fmt: skip

    @app.post(
        "/v1/sequences", response_model=list[SequenceInfo], summary="parse FASTA text into named sequences"
    )
    async def sequences(req: FastaRequest) -> list[dict[str, Any]]:
        # lines, never the string itself: read_fasta takes a one-line string for a file path
        lines = req.fasta.splitlines(keepends=True)
        seqs = read_fasta(lines, max_length=limits.max_sequence_length) if req.fasta.strip() else []
        if not seqs:
            raise SeqChatInputError("no FASTA records in the text: each record starts with a '>id' line")
        if len(seqs) > limits.max_sequences:
            raise SeqChatInputError(
                f"{len(seqs)} records; the limit is {limits.max_sequences} per conversation"
            )
        for s in seqs:  # the names /v1/chat accepts, so a question can refer to every record
            check_reference_name(s.name)
        return [
            {"name": s.name, "modality": s.modality, "length": len(s), "sequence": s.residues} for s in seqs
        ]

    def chat_payload(
        messages: list[dict[str, str]],
        sequences: Sequences,
        max_new_tokens: int,
        task: str | None = None,
        attribution: bool = False,
        tokens_field: str = "max_new_tokens",
    ) -> dict[str, Any]:
        """A chat worker job, checked whole here, so a bad request never joins (and slows) a batch."""
        if not messages or messages[-1]["role"] != "user":
            raise SeqChatInputError("the last message must be the user's question (role 'user')")
        if len(messages) > limits.max_messages:
            raise SeqChatInputError(f"{len(messages)} messages; the limit is {limits.max_messages}")
        for i, m in enumerate(messages):
            if len(m["content"]) > limits.max_message_chars:
                raise SeqChatInputError(
                    f"message {i + 1} has {len(m['content'])} characters; the limit is {limits.max_message_chars}: "
                    "put sequences in 'sequences' and refer to them as @name"
                )
        if max_new_tokens > limits.max_new_tokens:
            raise SeqChatInputError(f"{tokens_field} {max_new_tokens} is over the limit {limits.max_new_tokens}")
        payload = {
            "messages": messages, "sequences": named_sequences(sequences),
            "max_new_tokens": max_new_tokens, "task": task, "attribution": attribution,
        }  # fmt: skip
        bot.check_request(payload["messages"], payload["sequences"], max_new_tokens, task,
                          attribution, limits.max_attribution_residues)  # fmt: skip
        return payload

    @app.post("/v1/chat", response_model=ChatResponse, summary="answer the last user message")
    async def chat(req: ChatRequest, request: Request) -> dict[str, Any]:
        payload = chat_payload([m.model_dump() for m in req.messages], req.sequences, req.max_new_tokens,
                               req.task, req.attribution)  # fmt: skip
        return await worker.submit("chat", payload, request.is_disconnected)

    register_openai_routes(app, worker, limits, chat_payload, model_id)

    @app.post("/v1/predict", response_model=PredictResponse, summary="predict a task for each sequence")
    async def predict(req: PredictRequest, request: Request) -> dict[str, Any]:
        columns = prediction_columns(req.task, req.mode)
        items: list[tuple[str, Any]] = list(req.sequences.items()) if isinstance(req.sequences, dict) else [
            (s.name, s.sequence) for s in req.sequences
        ]  # fmt: skip
        if get_task(req.task).is_pair:
            if items:
                raise SeqChatInputError(f"task '{req.task}' reads pairs: send them as 'pairs' (id -> {{role: sequence}})")
            items = list(req.pairs.items())
        elif req.pairs:
            raise SeqChatInputError(f"task '{req.task}' reads one sequence per input: send 'sequences', not 'pairs'")
        if not items:
            raise SeqChatInputError("no sequences to predict")
        if len(items) > limits.max_predict_sequences:
            raise SeqChatInputError(
                f"{len(items)} sequences; the limit is {limits.max_predict_sequences} per request: "
                "split them, or run `seqchat predict` on a FASTA file"
            )
        ids = [k for k, _ in items]
        if len(set(ids)) != len(ids):
            raise SeqChatInputError("sequence names must be unique within a request")
        seqs = [task_input(req.task, v, k, limits.max_sequence_length) for k, v in items]
        rows = await worker.submit(
            "predict", {"task": req.task, "mode": req.mode, "ids": ids, "sequences": seqs}, request.is_disconnected
        )
        return {"task": req.task, "columns": columns, "rows": rows}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        html = (resources.files("seqchat.serving") / "static" / "index.html").read_text(encoding="utf-8")
        return HTMLResponse(html)

    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("seqchat")
    except PackageNotFoundError:
        return "0"


def allowed_hosts(bind: str, extra: list[str] | None) -> tuple[str, ...]:
    """Localhost names, the address the server binds to (unless a wildcard) and the --allowed-host names."""
    named = [] if bind in ("0.0.0.0", "::", "") else [bind]
    return tuple(dict.fromkeys([*LOCAL_HOSTS, *named, *(extra or [])]))
