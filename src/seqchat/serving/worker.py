"""The HTTP server's batching worker: one thread owns the model and answers the queued requests together."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from seqchat.serving.predict import prediction_rows
from seqchat.serving.schemas import Limits

log = logging.getLogger("seqchat.serve")


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
