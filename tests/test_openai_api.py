"""The OpenAI-compatible endpoints through the official `openai` client against the app served by uvicorn:
answers equal to `SeqChat.ask`, streamed piece by piece, `/v1/models`, and OpenAI-shaped errors."""

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from seqchat.serving.schemas import Limits
from seqchat.serving.server import create_app
from seqchat.serving.worker import _Job
from serving_fixtures import DNA, PROT, bot, model_dir, run_one_worker, slow_steps  # noqa: F401

openai = pytest.importorskip("openai")

MODEL = "tiny-seqchat"
Q = "Is there a promoter in @lacZ_upstream?"
SEQS = [{"name": "lacZ_upstream", "sequence": DNA}]


@contextlib.contextmanager
def serve(app) -> Iterator[str]:
    """`app` served by uvicorn on a free localhost port in a background thread."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def url(bot):  # noqa: F811
    limits = Limits(max_sequences=4, max_sequence_length=1_000, max_new_tokens=32)
    with serve(create_app(bot, limits, model_id=MODEL)) as u:
        yield u


@pytest.fixture(scope="module")
def client(url):
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120)


def _ask(client, extra: dict | None = None, **kw):
    return client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": Q}], max_tokens=12,
        extra_body={"sequences": SEQS, **(extra or {})}, **kw,
    )  # fmt: skip


def test_answer_equals_seqchat_ask(client, bot):  # noqa: F811
    r = _ask(client)
    expected = bot.ask(Q, {"lacZ_upstream": DNA}, max_new_tokens=12)
    assert expected.text  # the tiny model writes something, so equality means something
    assert r.object == "chat.completion" and r.model == MODEL and r.id.startswith("chatcmpl-")
    (choice,) = r.choices
    assert choice.message.role == "assistant"
    assert choice.message.content == expected.text
    assert choice.finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 0 and 0 < r.usage.completion_tokens <= 12
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    # decoding is greedy: a temperature is accepted and changes nothing
    assert _ask(client, temperature=0.9, top_p=0.5, seed=3).choices[0].message.content == expected.text


def test_stream_deltas_add_up_to_the_answer(client, bot):  # noqa: F811
    expected = bot.ask(Q, {"lacZ_upstream": DNA}, max_new_tokens=12).text
    chunks = list(_ask(client, stream=True, stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" and c.model == MODEL for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    usage = chunks[-1]
    assert usage.choices == [] and usage.usage.completion_tokens > 0
    final = chunks[-2].choices[0]
    assert final.finish_reason in ("stop", "length") and not final.delta.content
    pieces = [c.choices[0].delta.content for c in chunks[:-2] if c.choices[0].delta.content]
    assert len(pieces) > 1
    assert "".join(pieces) == expected


def test_stream_arrives_while_the_model_generates(client, bot):  # noqa: F811
    with slow_steps(bot, 0.15):
        stream = _ask(client, stream=True)
        arrivals = [(time.perf_counter(), c.choices[0].delta.content) for c in stream]
    times = [t for t, text in arrivals if text]
    assert len(times) > 2
    # 12 decoder steps of >= 0.15 s: pieces sent only at the end would arrive within a few ms of each other
    assert times[-1] - times[0] > 0.5


def test_a_slowly_read_stream_does_not_hold_up_other_requests(client, url, bot):  # noqa: F811
    expected = bot.ask(Q, {"lacZ_upstream": DNA}, max_new_tokens=12).text
    stream = _ask(client, stream=True)
    first = next(iter(stream))  # the stream is open; its client stops reading for a while
    assert first.choices[0].delta.role == "assistant"
    t0 = time.perf_counter()
    assert _ask(client).choices[0].message.content == expected
    r = httpx.post(url + "/v1/chat", json={"messages": [{"role": "user", "content": Q}], "sequences": SEQS,
                                           "max_new_tokens": 12}, timeout=60)  # fmt: skip
    assert r.status_code == 200 and r.json()["answer"] == expected
    assert time.perf_counter() - t0 < 30
    rest = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert rest == expected


def test_a_stream_whose_client_leaves_is_dropped(client, url, bot):  # noqa: F811
    with slow_steps(bot, 0.15):
        with _ask(client, stream=True) as stream:
            for c in stream:
                if c.choices[0].delta.content:
                    break  # leave mid-answer: the response is closed here
        _until(lambda: httpx.get(url + "/healthz").json()["queued"] == 0)
    expected = bot.ask(Q, {"lacZ_upstream": DNA}, max_new_tokens=12).text
    assert _ask(client).choices[0].message.content == expected


def test_models_list_and_retrieve(client):
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL]
    assert models.data[0].owned_by == "seqchat" and models.data[0].object == "model"
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError, match="this server serves 'tiny-seqchat'"):
        client.models.retrieve("gpt-4o")


def test_text_parts_developer_role_and_history(client, bot):  # noqa: F811
    history = [{"role": "user", "content": "What is @p?"}, {"role": "assistant", "content": "A protein."}]
    r = client.chat.completions.create(
        model="any-name", max_tokens=6,
        messages=[*history, {"role": "user", "content": [{"type": "text", "text": "And is it like @d?"}]}],
        extra_body={"sequences": {"p": PROT, "d": DNA}},
    )  # fmt: skip
    assert r.model == MODEL  # whatever the request names, the answer names the served model
    expected = bot.ask("And is it like @d?", {"p": PROT, "d": DNA}, history=history, max_new_tokens=6)
    assert r.choices[0].message.content == expected.text


def _error(excinfo) -> dict:
    body = excinfo.value.body
    assert set(body) >= {"message", "type", "param", "code"}, body
    return body


def test_unknown_field_is_refused_naming_it(client, url):
    with pytest.raises(openai.BadRequestError) as e:
        _ask(client, extra={"max_new_token": 5})
    err = _error(e)
    assert e.value.status_code == 400
    assert "unknown field 'max_new_token'" in err["message"] and err["param"] == "max_new_token"
    assert err["type"] == "invalid_request_error"
    # the same through plain HTTP: OpenAI's error shape, never a traceback
    r = httpx.post(url + "/v1/chat/completions", json={"model": MODEL, "messages": [], "frobnicate": 1})
    assert r.status_code == 400 and "unknown field 'frobnicate'" in r.json()["error"]["message"]


@pytest.mark.parametrize("stream", [False, True])
def test_bad_residues_are_refused_naming_the_sequence(client, stream):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "What is @bad_seq?"}], stream=stream,
            extra_body={"sequences": [{"name": "bad_seq", "sequence": "ACGTJACGT"}]},
        )  # fmt: skip
    assert "sequence 'bad_seq'" in _error(e)["message"] and "'J'" in _error(e)["message"]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"n": 2}, "'n' is not supported"),
        ({"stop": ["\n"]}, "'stop' is not supported"),
        ({"logprobs": True}, "'logprobs' is not supported"),
        ({"response_format": {"type": "json_object"}}, "'response_format' is not supported"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "'tools' is not supported"),
        ({"max_tokens": 33}, "max_tokens 33 is over the limit 32"),
        ({"max_completion_tokens": 40}, "max_completion_tokens 40 is over the limit 32"),
        ({"messages": [{"role": "user", "content": "What is @nothing?"}]}, "no sequence is named @nothing"),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "last message must be the user"),
        ({"messages": [{"role": "tool", "content": "x", "tool_call_id": "1"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
         "only text parts are read"),
    ],
)  # fmt: skip
def test_what_seqchat_cannot_do_is_refused_clearly(client, kw, message):
    args = {"model": MODEL, "messages": [{"role": "user", "content": Q}], "extra_body": {"sequences": SEQS}, **kw}
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(**args)
    assert message in _error(e)["message"]


def test_a_stream_that_times_out_ends_with_an_error_event(bot):  # noqa: F811
    app = create_app(bot, Limits(request_timeout_s=0.6), model_id=MODEL)
    with serve(app) as u, slow_steps(bot, 0.2):
        c = openai.OpenAI(base_url=u + "/v1", api_key="unused", max_retries=0, timeout=60)
        stream = _ask(c, stream=True)
        got = []
        with pytest.raises(openai.APIError, match="no answer within 1 s"):
            for chunk in stream:
                got.append(chunk)
        assert got and got[0].choices[0].delta.role == "assistant"
        health = httpx.get(u + "/healthz").json()
        _until(lambda: httpx.get(u + "/healthz").json()["queued"] == 0)
    assert health["status"] == "ok"


def _until(check, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_body_limit_error_has_openai_shape_there_only(bot):  # noqa: F811
    from fastapi.testclient import TestClient

    with TestClient(create_app(bot, Limits(max_body_bytes=500)), base_url="http://localhost") as c:
        big = {"model": MODEL, "messages": [{"role": "user", "content": "x" * 600}]}
        r = c.post("/v1/chat/completions", json=big)
        assert r.status_code == 413 and "byte limit" in r.json()["error"]["message"]
        r = c.post("/v1/chat", json={"messages": [{"role": "user", "content": "x" * 600}]})
        assert r.status_code == 413 and "byte limit" in r.json()["error"]  # unchanged: a plain string


def test_streamed_jobs_batched_together_each_get_their_own_text(bot):  # noqa: F811
    questions = [("what is @p?", 9), ("Is @p soluble?", 4), ("Describe @p.", 12)]
    pieces: list[list[str]] = [[] for _ in questions]

    def make_jobs(loop):
        jobs = []
        for i, (q, n) in enumerate(questions):
            payload = {"messages": [{"role": "user", "content": q}], "sequences": {"p": PROT},
                       "max_new_tokens": n, "task": None, "attribution": False, "counts": True}  # fmt: skip
            # on_text runs on the worker thread; list.append is enough to collect in order
            jobs.append(_Job("chat", payload, loop, loop.create_future(), on_text=pieces[i].append))
        plain = {"messages": [{"role": "user", "content": "and @p?"}], "sequences": {"p": PROT},
                 "max_new_tokens": 5, "task": None, "attribution": False}  # fmt: skip
        jobs.append(_Job("chat", plain, loop, loop.create_future()))
        return jobs

    worker, results = run_one_worker(bot, Limits(max_batch=8), make_jobs)  # queued before it starts: one batch
    assert worker.batches == 1
    for (q, n), got, res in zip(questions, pieces, results, strict=False):
        expected = bot.ask(q, {"p": PROT}, max_new_tokens=n)
        assert res["answer"] == expected.text and "".join(got) == expected.text
        assert len(got) > 1 and res["completion_tokens"] <= n
    assert "completion_tokens" not in results[-1]  # a /v1/chat job's result is as before
