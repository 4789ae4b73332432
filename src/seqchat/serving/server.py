"""`seqchat serve`: an HTTP API (FastAPI) and a web chat page over one loaded model.

One worker thread owns the model. Requests wait in a bounded queue; the worker takes every request that
arrived while the previous batch ran (up to `max_batch`) and answers them together: chat questions in one
left-padded batched generation, predictions of one task in one `predict_task` call. Requests carry their
sequences inline and never name files on the server.

The routes are here; the bodies and limits in `seqchat.serving.schemas`, the worker in
`seqchat.serving.worker`, the OpenAI-compatible routes in `seqchat.serving.openai_compat`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from importlib import resources
from typing import Any

from starlette.requests import Request  # at module level: FastAPI resolves endpoint annotations here

from seqchat.errors import SeqChatInputError
from seqchat.modeling.processor import check_reference_name
from seqchat.modeling.sequences import Sequence, infer_modality, make_sequence, read_fasta
from seqchat.serving.openai_compat import register_openai_routes, validation_error
from seqchat.serving.predict import prediction_columns, task_input
from seqchat.serving.schemas import (
    LOCAL_HOSTS,
    ChatRequest,
    ChatResponse,
    ErrorResponse,
    FastaRequest,
    Limits,
    PredictRequest,
    PredictResponse,
    SequenceInfo,
    Sequences,
    error_content,
)
from seqchat.serving.worker import BatchingWorker, ClientGone, ServerBusy
from seqchat.tasks.registry import TASKS, get_task

log = logging.getLogger("seqchat.serve")


class BodyLimit:
    """ASGI middleware: refuse request bodies over a size limit (declared or streamed) with a JSON 413."""

    def __init__(self, app: Any, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, scope: dict, send: Any) -> None:
        body = json.dumps(error_content(scope.get("path", ""), 413, f"request body over the {self.max_bytes} byte "
                                        "limit: send fewer or shorter sequences")).encode()  # fmt: skip
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
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
                                        " (start the server with --allowed-host NAME to add one)")).encode()
        await send({"type": "http.response.start", "status": 400,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _validation_message(errors: list[dict[str, Any]]) -> str:
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        if e.get("type") == "json_invalid":
            parts.append("the request body is not valid JSON")
        elif e.get("type") == "extra_forbidden":
            # `stream` is the field OpenAI-style clients send: point them to the endpoint that streams
            stream_hint = ': for a streamed answer POST to /v1/chat/completions with "stream": true'
            hint = stream_hint if loc == "stream" else ""
            parts.append(f"unknown field '{loc}'{hint}")
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
                raise SeqChatInputError(
                    f"task '{req.task}' reads pairs: send them as 'pairs' (id -> {{role: sequence}})"
                )
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
