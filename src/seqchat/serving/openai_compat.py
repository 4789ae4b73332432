"""OpenAI-compatible endpoints of `seqchat serve`: `POST /v1/chat/completions` (streamed or not) and `GET /v1/models`.

Requests go through the same checks, limits and batching worker as `/v1/chat`; a streamed request's text
arrives piece by piece from the batched generation it is part of. Sequences travel in `sequences`, a
seqchat extension field (`[{name, sequence, modality?}]` or `{name: residues}`), and messages refer to
them as `@name`; `task` and `attribution` work as in `/v1/chat`, and what they add comes back under
`seqchat`. Decoding is greedy: `temperature`, `top_p`, `seed`, the penalties and `logit_bias` are
accepted and do not change the answer; features seqchat lacks (tools, stop sequences, logprobs, JSON
output, n > 1) are refused with a 400 naming the field; any other unknown field is refused too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request  # at module level: FastAPI resolves endpoint annotations here

from seqchat.errors import SeqChatInputError
from seqchat.serving.schemas import Limits, Sequences, error_content
from seqchat.serving.worker import BatchingWorker, ClientGone

log = logging.getLogger("seqchat.serve")
DEFAULT_MAX_TOKENS = 128  # as /v1/chat's max_new_tokens


def validation_error(errors: list[dict[str, Any]], fallback: str) -> tuple[str, str | None]:
    """The message and the offending field of a chat-completions request that failed validation."""
    first = errors[0] if errors else {}
    loc = ".".join(str(x) for x in first.get("loc", ()) if x != "body") or None
    if first.get("type") == "extra_forbidden":
        return (
            f"unknown field '{loc}': not an OpenAI chat-completions field that seqchat takes, nor its "
            "'sequences' extension", loc
        )  # fmt: skip
    return fallback, loc


# ---- request bodies ---------------------------------------------------------------------------


class ChatMessage(BaseModel):
    """One turn; content is text or a list of text parts."""

    # a replayed assistant message may carry null `refusal`, `tool_calls`, `audio`...: allowed when empty
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None


class StreamOptions(BaseModel):
    """`include_usage`: a last chunk, before `[DONE]`, carries the token counts."""

    model_config = ConfigDict(extra="allow")

    include_usage: bool | None = None


class CompletionRequest(BaseModel):
    """An OpenAI chat-completions request, plus seqchat's `sequences`."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="any name is accepted; the answer names the served model")
    messages: list[ChatMessage]
    sequences: Sequences = Field(
        default_factory=list,
        description="seqchat extension: [{name, sequence, modality?}] or {name: residues}; refer to one as @name",
    )
    task: str | None = Field(None, description="seqchat extension, as in /v1/chat: adds class probabilities")
    attribution: bool = Field(False, description="seqchat extension, as in /v1/chat: per-residue scores")
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    n: int | None = Field(None, ge=1)
    # accepted; decoding is greedy, so they do not change the answer
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    # accepted; they label or route a request and mean nothing to a local model
    user: str | None = None
    metadata: dict[str, Any] | None = None
    store: bool | None = None
    service_tier: str | None = None
    parallel_tool_calls: bool | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None
    # refused unless empty or off: seqchat cannot do them
    stop: str | list[str] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    functions: list[Any] | None = None
    function_call: Any = None
    response_format: dict[str, Any] | None = None
    modalities: list[str] | None = None
    audio: Any = None
    prediction: Any = None
    web_search_options: Any = None

    def refuse_unsupported(self) -> None:
        """Raise a clear error for each feature the request turns on that seqchat cannot honour."""
        refused = {
            "n": self.n not in (None, 1),
            "stop": bool(self.stop),
            "logprobs": bool(self.logprobs) or bool(self.top_logprobs),
            "tools": bool(self.tools) or bool(self.functions),
            "tool_choice": self.tool_choice not in (None, "none", "auto"),
            "function_call": self.function_call not in (None, "none", "auto"),
            "response_format": self.response_format not in (None, {"type": "text"}),
            "modalities": self.modalities not in (None, ["text"]),
            "audio": self.audio is not None,
            "prediction": self.prediction is not None,
            "web_search_options": self.web_search_options is not None,
        }
        for name, on in refused.items():
            if on:
                why = "one choice is returned (greedy decoding gives the same answer each time)" if name == "n" \
                    else "seqchat answers in plain text only"  # fmt: skip
                raise SeqChatInputError(f"'{name}' is not supported: {why}")

    def conversation(self) -> list[dict[str, str]]:
        """The messages as seqchat's {'role', 'content'} dicts: text parts joined, 'developer' read as 'system'."""
        out = []
        for i, m in enumerate(self.messages):
            extra = [k for k, v in (m.model_extra or {}).items() if v not in (None, "", [], {})]
            if extra:
                raise SeqChatInputError(f"messages[{i}].{extra[0]} is not supported: seqchat answers in text only")
            if m.content is None:
                raise SeqChatInputError(f"messages[{i}] has no content")
            content = m.content
            if isinstance(content, list):
                texts = []
                for j, part in enumerate(content):
                    if part.get("type") != "text" or not isinstance(part.get("text"), str):
                        raise SeqChatInputError(
                            f"messages[{i}].content[{j}] is a '{part.get('type')}' part: only text parts are read; "
                            "send sequences in 'sequences'"
                        )
                    texts.append(part["text"])
                content = "\n".join(texts)
            out.append({"role": "system" if m.role == "developer" else m.role, "content": content})
        return out

    def token_limit(self, server_limit: int) -> tuple[int, str]:
        """The most tokens to generate and the field that set it (neither: /v1/chat's default, within the limit)."""
        if self.max_completion_tokens is not None:
            return self.max_completion_tokens, "max_completion_tokens"
        if self.max_tokens is not None:
            return self.max_tokens, "max_tokens"
        return min(DEFAULT_MAX_TOKENS, server_limit), "max_tokens"


# ---- responses --------------------------------------------------------------------------------


def _usage(result: dict[str, Any]) -> dict[str, int]:
    p, c = result["prompt_tokens"], result["completion_tokens"]
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _extras(result: dict[str, Any]) -> dict[str, Any]:
    """What /v1/chat adds to an answer: confidence, and with `task`/`attribution` probabilities and scores."""
    return {k: result[k] for k in ("confidence", "probability", "probabilities", "attribution")}


def _sse(obj: Any) -> str:
    return f"data: {json.dumps(obj)}\n\n"


def register_openai_routes(
    app: Any,
    worker: BatchingWorker,
    limits: Limits,
    chat_payload: Callable[..., dict[str, Any]],
    model_id: str,
) -> None:
    """Add `/v1/chat/completions` and `/v1/models` to `app`; `chat_payload` checks a request as `/v1/chat` does."""
    from fastapi.responses import JSONResponse, StreamingResponse

    card = {"id": model_id, "object": "model", "created": int(time.time()), "owned_by": "seqchat"}

    @app.get("/v1/models", summary="OpenAI-compatible: the served model")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [card]}

    @app.get("/v1/models/{model:path}", summary="OpenAI-compatible: one model", response_model=None)
    async def model(model: str) -> dict[str, Any] | JSONResponse:
        if model != model_id:
            return JSONResponse(status_code=404, content=error_content(
                "/v1/models", 404, f"model '{model[:80]}' is not served here; this server serves '{model_id}'", "model"
            ))  # fmt: skip
        return card

    @app.post("/v1/chat/completions", summary="OpenAI-compatible chat completion (stream: server-sent events)",
              response_model=None)  # fmt: skip
    async def completions(req: CompletionRequest, request: Request) -> dict[str, Any] | StreamingResponse:
        req.refuse_unsupported()
        max_tokens, field = req.token_limit(limits.max_new_tokens)
        payload = chat_payload(req.conversation(), req.sequences, max_tokens, req.task, req.attribution, field)
        payload["counts"] = True  # the worker adds token counts and the finish reason
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model_id,
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}  # fmt: skip

        if not req.stream:
            result = await worker.submit("chat", payload, request.is_disconnected)
            return {
                "id": cid, "object": "chat.completion", "created": created, "model": model_id,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": result["answer"]},
                             "logprobs": None, "finish_reason": result["finish_reason"]}],
                "usage": _usage(result), "seqchat": _extras(result),
            }  # fmt: skip

        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | None] = asyncio.Queue()
        # the worker thread hands each piece to this loop; the job's result is settled after its last piece
        job = worker.enqueue("chat", payload, on_text=lambda p: loop.call_soon_threadsafe(pieces.put_nowait, p))
        job.future.add_done_callback(lambda _f: pieces.put_nowait(None))
        include_usage = bool(req.stream_options and req.stream_options.include_usage)

        async def events() -> AsyncIterator[str]:
            deadline = job.queued_at + limits.request_timeout_s
            try:
                yield _sse(chunk({"role": "assistant", "content": ""}))
                while True:
                    left = deadline - time.perf_counter()
                    if left <= 0:
                        raise asyncio.TimeoutError
                    try:
                        piece = await asyncio.wait_for(pieces.get(), min(left, limits.disconnect_poll_s))
                    except asyncio.TimeoutError:
                        # Starlette also cancels this generator when the client goes, but only for servers
                        # that report a disconnect while nothing is being sent
                        if await request.is_disconnected():
                            raise ClientGone from None
                        continue
                    if piece is None:
                        break
                    yield _sse(chunk({"content": piece}))
                result = job.future.result()
                yield _sse({**chunk({}, result["finish_reason"]), "seqchat": _extras(result)})
                if include_usage:
                    yield _sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model_id,
                                "choices": [], "usage": _usage(result)})  # fmt: skip
                yield "data: [DONE]\n\n"
            except ClientGone:
                return
            except Exception as e:  # the status line is sent: the error goes in the stream, as OpenAI does
                if isinstance(e, asyncio.TimeoutError):
                    message = f"no answer within {limits.request_timeout_s:.0f} s; the server is overloaded"
                elif isinstance(e, SeqChatInputError):
                    message = str(e)
                else:
                    log.exception("internal error in a streamed answer")
                    message = f"internal error ({type(e).__name__}); the server log has the details"
                yield _sse(error_content("/v1/chat/completions", 500, message))
            finally:
                if not job.future.done():
                    job.future.cancel()  # the worker drops it at its next step

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"cache-control": "no-cache", "x-accel-buffering": "no"}
        )
