"""The HTTP API with FastAPI's TestClient: endpoints, limits, JSON errors and the batching worker."""

import asyncio
import threading

import pytest
from fastapi.testclient import TestClient

from seqchat.serving.schemas import Limits
from seqchat.serving.server import create_app
from seqchat.serving.worker import BatchingWorker, _Job
from serving_fixtures import DNA, FASTA, PROT, bot, model_dir, run_one_worker  # noqa: F401

CHAT = {
    "messages": [{"role": "user", "content": "Is there a promoter in @lacZ_upstream?"}],
    "sequences": [{"name": "lacZ_upstream", "sequence": DNA}],
    "max_new_tokens": 6,
}


@pytest.fixture(scope="module")
def client(bot):  # noqa: F811
    limits = Limits(max_body_bytes=20_000, max_sequences=4, max_sequence_length=1_000, max_new_tokens=32)
    with TestClient(create_app(bot, limits), base_url="http://localhost") as c:
        yield c


def test_health_tasks_page_and_openapi(client):
    assert client.get("/healthz").json()["status"] == "ok"
    tasks = {t["name"]: t for t in client.get("/v1/tasks").json()}
    assert tasks["promoter_300_all"]["columns"] == ["id", "prediction", "label", "p_0", "p_1", "answer"]
    assert tasks["protein_meltome"]["type"] == "regression"
    page = client.get("/")
    assert page.status_code == 200 and 'id="fasta-file"' in page.text
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/chat", "/v1/predict", "/v1/tasks", "/healthz", "/v1/sequences"} <= set(paths)


def test_chat_answers_with_confidence_and_attribution(client, bot):  # noqa: F811
    r = client.post("/v1/chat", json={**CHAT, "attribution": True, "task": "promoter_300_all"})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = bot.ask(CHAT["messages"][0]["content"], {"lacZ_upstream": DNA}, max_new_tokens=6)
    assert body["answer"] == expected.text
    assert body["confidence"] == pytest.approx(expected.confidence, rel=1e-3)
    assert set(body["probabilities"]) == {"0", "1"}
    (track,) = body["attribution"]
    assert track["name"] == "lacZ_upstream" and len(track["scores"]) == len(DNA)


def test_chat_takes_a_dict_of_sequences_and_history(client):
    r = client.post("/v1/chat", json={
        "messages": [{"role": "user", "content": "What is @p?"}, {"role": "assistant", "content": "A protein."},
                     {"role": "user", "content": "And is it like @d?"}],
        "sequences": {"p": PROT, "d": DNA, "unused": "ACGT"}, "max_new_tokens": 4,
    })  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["attribution"] is None


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({**CHAT, "sequences": []}, 400, "no sequence is named @lacZ_upstream"),
        ({**CHAT, "messages": [{"role": "robot", "content": "hi"}]}, 422, "messages.0.role"),
        (
            {**CHAT, "messages": [{"role": "assistant", "content": "hi"}]},
            400,
            "last message must be the user",
        ),
        (
            {**CHAT, "sequences": [{"name": "lacZ_upstream", "sequence": "ACGTJ"}]},
            400,
            "character 'J' at position 5",
        ),
        ({**CHAT, "sequences": [{"name": "x y", "sequence": "ACGT"}]}, 400, "cannot be referred to as @name"),
        ({**CHAT, "sequences": {f"s{i}": "ACGT" for i in range(5)}}, 400, "5 sequences sent; the limit is 4"),
        (
            {**CHAT, "sequences": {"lacZ_upstream": "ACGT" * 300}},
            400,
            "1200 residues long; the limit is 1000",
        ),
        ({**CHAT, "max_new_tokens": 500}, 400, "over the limit 32"),
        ({**CHAT, "task": "promotor"}, 400, "unknown task 'promotor'"),
        ({"messages": "hi"}, 422, "messages"),
        # an unknown field is refused, never ignored; `stream` points to the endpoint that streams
        ({**CHAT, "stream": True}, 422, "unknown field 'stream': for a streamed answer POST to /v1/chat/completions"),
        ({**CHAT, "max_tokens": 5}, 422, "unknown field 'max_tokens'"),
    ],
)
def test_bad_chat_requests_get_one_json_error(client, body, status, message):
    r = client.post("/v1/chat", json=body)
    assert r.status_code == status
    assert r.headers["content-type"].startswith("application/json")
    assert message in r.json()["error"], r.json()


def test_body_size_limit_and_invalid_json(client):
    r = client.post("/v1/chat", json={**CHAT, "sequences": {"lacZ_upstream": "A" * 30_000}})
    assert r.status_code == 413 and "20000 byte limit" in r.json()["error"]

    def chunks():  # no content-length: the limit applies to the streamed body
        for _ in range(30):
            yield b"A" * 1000

    r = client.post("/v1/chat", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    r = client.post("/v1/chat", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"] == "the request body is not valid JSON"
    assert client.get("/v1/nothing").json() == {"error": "Not Found"}


def test_requests_never_name_server_files(client, tmp_path):
    secret = tmp_path / "secret.fa"
    secret.write_text(">lacZ_upstream\nACGT\n")
    # a path where residues belong is just invalid residues, never a file to open
    r = client.post("/v1/sequences", json={"fasta": str(secret)})
    assert r.status_code == 400 and "malformed FASTA" in r.json()["error"]
    r = client.post("/v1/chat", json={**CHAT, "sequences": {"lacZ_upstream": str(secret)}})
    assert r.status_code == 400


def test_sequences_endpoint_parses_fasta_text(client):
    r = client.post("/v1/sequences", json={"fasta": FASTA})
    assert r.status_code == 200
    assert [(s["name"], s["modality"], s["length"]) for s in r.json()] == [
        ("lacZ_upstream", "dna", len(DNA)), ("lacI", "protein", len(PROT))
    ]  # fmt: skip
    assert "no FASTA records" in client.post("/v1/sequences", json={"fasta": " "}).json()["error"]


def test_predict_endpoint(client, bot):  # noqa: F811
    r = client.post("/v1/predict", json={"task": "promoter_300_all", "sequences": {"a": DNA, "b": DNA[:70]}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["columns"] == ["id", "prediction", "label", "p_0", "p_1", "answer"]
    assert [row["id"] for row in body["rows"]] == ["a", "b"]
    df = bot.predict("promoter_300_all", {"a": DNA, "b": DNA[:70]})
    assert [row["p_1"] for row in body["rows"]] == pytest.approx(list(df.p_1), abs=1e-6)
    r = client.post("/v1/predict", json={"task": "promoter_300_all", "sequences": {"p": PROT}})
    assert r.status_code == 400 and "reads DNA" in r.json()["error"]
    r = client.post("/v1/predict", json={"task": "promoter_300_all", "sequences": {}})
    assert r.status_code == 400 and "no sequences" in r.json()["error"]


def test_predict_endpoint_takes_pairs_for_a_pair_task(client, bot):  # noqa: F811
    pairs = {
        "p1": {"rna": "GGCUAGCUAGGCAUCGAUCG", "protein": PROT}, "p2": {"rna": "ACGUACGUUUAGC", "protein": PROT[:30]}
    }
    r = client.post("/v1/predict", json={"task": "rna_protein_interaction", "pairs": pairs})
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert [row["id"] for row in rows] == ["p1", "p2"]
    df = bot.predict("rna_protein_interaction", {k: (v["rna"], v["protein"]) for k, v in pairs.items()})
    assert [row["p_1"] for row in rows] == pytest.approx(list(df.p_1), abs=1e-6)
    r = client.post("/v1/predict", json={"task": "rna_protein_interaction", "sequences": {"a": "ACGU"}})
    assert r.status_code == 400 and "send them as 'pairs'" in r.json()["error"]
    r = client.post("/v1/predict", json={"task": "rna_protein_interaction", "pairs": {"p": {"rna": "ACGU"}}})
    assert r.status_code == 400 and "'p' has no protein sequence" in r.json()["error"]
    tasks = {t["name"]: t for t in client.get("/v1/tasks").json()}
    assert tasks["rna_protein_interaction"]["roles"] == ["rna", "protein"]


def test_concurrent_requests_all_succeed_and_match_sequential(client, bot):  # noqa: F811
    questions = [f"Question {i}: is @lacZ_upstream a promoter?" for i in range(6)]
    results: dict[int, dict] = {}

    def call(i: int) -> None:
        body = {**CHAT, "messages": [{"role": "user", "content": questions[i]}]}
        results[i] = client.post("/v1/chat", json=body).json()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, q in enumerate(questions):
        assert results[i]["answer"] == bot.ask(q, {"lacZ_upstream": DNA}, max_new_tokens=6).text


def test_worker_batches_queued_requests_into_one_model_call(bot):  # noqa: F811
    worker = BatchingWorker(bot, Limits(max_batch=8))
    calls = []
    real = bot.chat_batch

    def counting(convs, *a, **k):
        calls.append(len(convs))
        return real(convs, *a, **k)

    loop = asyncio.new_event_loop()
    try:
        jobs = []
        for i in range(5):
            payload = {"messages": [{"role": "user", "content": f"{i}: what is @p?"}], "sequences": {"p": PROT},
                       "max_new_tokens": 3 + i, "task": None, "attribution": False}  # fmt: skip
            jobs.append(_Job("chat", payload, loop, loop.create_future()))
        bad = {"messages": [{"role": "user", "content": "what is @missing?"}], "sequences": {"p": PROT},
               "max_new_tokens": 3, "task": None, "attribution": False}  # fmt: skip
        jobs.insert(2, _Job("chat", bad, loop, loop.create_future()))
        for j in jobs:  # queued before the worker starts, as when requests arrive during a long batch
            worker.jobs.put(j)
        bot.chat_batch = counting
        worker.start()
        results = loop.run_until_complete(asyncio.gather(*(j.future for j in jobs), return_exceptions=True))
    finally:
        bot.chat_batch = real
        worker.stop()
        loop.close()
    # one batch of 6 fails on the bad request, then each job runs alone: only the bad one fails
    assert calls[0] == 6 and worker.batches == 1
    assert isinstance(results[2], Exception) and "no sequence is named @missing" in str(results[2])
    good = [r for i, r in enumerate(results) if i != 2]
    for i, r in enumerate(good):
        assert r["answer"] == bot.ask(f"{i}: what is @p?", {"p": PROT}, max_new_tokens=3 + i).text


def test_worker_batches_without_a_failure(bot):  # noqa: F811
    def make_jobs(loop):
        jobs = [_Job("chat", {"messages": [{"role": "user", "content": f"{i} @p"}], "sequences": {"p": PROT},
                              "max_new_tokens": 2, "task": None, "attribution": False}, loop, loop.create_future())
                for i in range(7)]  # fmt: skip
        jobs.append(_Job("predict", {"task": "protein_solubility", "mode": "auto", "ids": ["a"],
                                     "sequences": [PROT]}, loop, loop.create_future()))  # fmt: skip
        return jobs

    worker, results = run_one_worker(bot, Limits(max_batch=3), make_jobs)
    # 8 queued requests, at most 3 per batch
    assert worker.batches == 3
    assert results[-1][0]["id"] == "a" and "p_1" in results[-1][0]


def test_a_request_whose_extras_fail_fails_alone_without_regenerating(bot):  # noqa: F811
    worker = BatchingWorker(bot, Limits())
    calls = []
    real = bot.chat_batch

    def counting(convs, *a, **k):
        calls.append(len(convs))
        return real(convs, *a, **k)

    def chat(q: str, task: str | None = None) -> dict:
        return {"messages": [{"role": "user", "content": q}], "sequences": {"a": DNA, "b": DNA[:40]},
                "max_new_tokens": 3, "task": task, "attribution": True}  # fmt: skip

    loop = asyncio.new_event_loop()
    try:
        payloads = [chat("Is @a a promoter?"), chat("Compare @a and @b", "promoter_300_all"), chat("And @b?")]
        jobs = [_Job("chat", x, loop, loop.create_future()) for x in payloads]
        for j in jobs:
            worker.jobs.put(j)
        bot.chat_batch = counting
        worker.start()
        results = loop.run_until_complete(asyncio.gather(*(j.future for j in jobs), return_exceptions=True))
    finally:
        bot.chat_batch = real
        worker.stop()
        loop.close()
    assert calls == [3]
    assert "exactly one sequence" in str(results[1])
    assert [t["name"] for t in results[0]["attribution"]] == ["a"]
    assert [t["name"] for t in results[2]["attribution"]] == ["b"]


def test_worker_stops_when_told_while_a_batch_runs(bot):  # noqa: F811
    worker = BatchingWorker(bot, Limits())
    real = bot.chat_batch

    def stop_midway(*a, **k):
        worker.jobs.put(None)  # what stop() sends, arriving while the batch generates
        return real(*a, **k)

    loop = asyncio.new_event_loop()
    try:
        job = _Job("chat", {"messages": [{"role": "user", "content": "what is @p?"}], "sequences": {"p": PROT},
                            "max_new_tokens": 2, "task": None, "attribution": False},
                   loop, loop.create_future())
        worker.jobs.put(job)
        bot.chat_batch = stop_midway
        worker.start()
        loop.run_until_complete(job.future)
        worker.thread.join(timeout=20)
        stopped = not worker.thread.is_alive()
    finally:
        bot.chat_batch = real
        if worker.thread.is_alive():
            worker.jobs.put(None)
        worker.stop()
        loop.close()
    assert stopped  # the stop request is not lost in the collection that follows a batch
