"""Issue 14, server items through the real app: attribution budget, prompt cap, predict interleaved with
chat and cancelled when its client leaves, validation before batching, Host header check, one name rule."""

import resource
import socket
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from seqchat.serving.schemas import Limits
from seqchat.serving.server import create_app
from serving_fixtures import DNA, bot, model_dir  # noqa: F401

CHAT = {
    "messages": [{"role": "user", "content": "Is there a promoter in @a?"}],
    "sequences": [{"name": "a", "sequence": DNA}],
    "max_new_tokens": 4,
}
# 48 sequences predicted by generation: long enough on the tiny model to watch it run in chunks
BIG_PREDICT = {"task": "promoter_300_all", "mode": "generate", "sequences": {f"s{i}": DNA for i in range(48)}}


def _client(bot, **limits) -> TestClient:  # noqa: F811
    return TestClient(create_app(bot, Limits(**limits)), base_url="http://localhost")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _wait_for(check, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while not check():
        if time.time() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


# ---- 1. attribution budget ----------------------------------------------------------------------


def test_attribution_over_the_residue_budget_is_refused_before_model_work(bot):  # noqa: F811
    long = (DNA * 10)[:900]
    body = {**CHAT, "messages": [{"role": "user", "content": "Compare @a and @b"}],
            "sequences": {"a": long, "b": long}, "attribution": True}  # fmt: skip
    with _client(bot, max_attribution_residues=1_000) as c:
        rss = _peak_rss_mb()
        r = c.post("/v1/chat", json=body)
        assert r.status_code == 400
        assert "attribution over 1800 residues asked; the limit is 1000 residues per request" in r.json()["error"]
        health = c.get("/healthz").json()
        assert health["batches"] == 0 and health["answered"] == 0  # never reached the model
        assert _peak_rss_mb() - rss < 50  # bound: 50 MB over the peak before the request
        ok = c.post("/v1/chat", json={**body, "sequences": {"a": long[:400], "b": long[:400]}})
        assert ok.status_code == 200, ok.text
        assert [len(t["scores"]) for t in ok.json()["attribution"]] == [400, 400]


# ---- 2. prompt length cap -----------------------------------------------------------------------


def test_prompt_past_the_decoder_context_is_refused_before_model_work(bot):  # noqa: F811
    ctx = bot.model.processor.context_length
    per_ref = bot.model.processor.num_tokens("dna", len(DNA))
    refs = ctx // per_ref + 1
    body = {**CHAT, "messages": [{"role": "user", "content": " ".join(["@a"] * refs)}]}
    with _client(bot, max_message_chars=100_000) as c:
        rss = _peak_rss_mb()
        r = c.post("/v1/chat", json=body)
        assert r.status_code == 400
        assert f"the decoder reads at most {ctx}" in r.json()["error"]
        assert c.get("/healthz").json()["batches"] == 0
        assert _peak_rss_mb() - rss < 50


# ---- 3. predict in chunks between chats, cancelled when nobody waits, queue depth in /healthz -------


def test_chat_is_answered_while_a_big_predict_runs_in_chunks(bot):  # noqa: F811
    with _client(bot, predict_chunk=4, max_new_tokens=8) as c:
        result: dict = {}
        t = threading.Thread(target=lambda: result.update(r=c.post("/v1/predict", json=BIG_PREDICT)))
        t.start()
        _wait_for(lambda: 0 < c.get("/healthz").json()["queue"]["predict_sequences"] < 48)
        r = c.post("/v1/chat", json=CHAT)
        assert r.status_code == 200, r.text
        health = c.get("/healthz").json()
        # the chat came back while the prediction still had sequences left
        assert health["queue"]["predict"] == 1 and health["queue"]["predict_sequences"] > 0, health
        t.join(timeout=300)
        assert result["r"].status_code == 200
        assert [row["id"] for row in result["r"].json()["rows"]] == list(BIG_PREDICT["sequences"])
        assert c.get("/healthz").json()["queue"] == {"chat": 0, "predict": 0, "predict_sequences": 0}


def test_a_timed_out_predict_is_cancelled_between_chunks(bot):  # noqa: F811
    with _client(bot, predict_chunk=2, request_timeout_s=1.0) as c:
        r = c.post("/v1/predict", json=BIG_PREDICT)
        assert r.status_code == 504
        _wait_for(lambda: c.get("/healthz").json()["queued"] == 0)
        health = c.get("/healthz").json()
        assert health["cancelled"] == 1 and health["predicted"] < 48, health


def test_a_predict_whose_client_went_away_is_cancelled(bot):  # noqa: F811
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(bot, Limits(predict_chunk=2, disconnect_poll_s=0.1)),
                                           host="127.0.0.1", port=port, log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: server.started, 60)
        with pytest.raises(httpx.ReadTimeout):  # the client gives up and closes its connection
            httpx.post(url + "/v1/predict", json=BIG_PREDICT, timeout=1.0)
        _wait_for(lambda: httpx.get(url + "/healthz").json()["queued"] == 0, 60)
        health = httpx.get(url + "/healthz").json()
        assert health["cancelled"] == 1 and health["predicted"] < 48, health
    finally:
        server.should_exit = True
        thread.join(timeout=60)


# ---- 4. a bad request never joins a batch -------------------------------------------------------


def test_a_request_naming_a_missing_sequence_fails_before_the_worker(bot):  # noqa: F811
    with _client(bot) as c:
        bad = {**CHAT, "messages": [{"role": "user", "content": "What is @missing?"}]}
        r = c.post("/v1/chat", json=bad)
        assert r.status_code == 400 and "no sequence is named @missing" in r.json()["error"]
        wrong_task = {**CHAT, "task": "protein_solubility"}
        r = c.post("/v1/chat", json=wrong_task)
        assert r.status_code == 400 and "reads PROTEIN" in r.json()["error"]
        assert c.get("/healthz").json()["batches"] == 0


# ---- 5. Host header -----------------------------------------------------------------------------


@pytest.mark.parametrize(("host", "status"), [("localhost:8000", 200), ("127.0.0.1", 200), ("[::1]:80", 200),
                                              ("evil.example", 400), ("localhost.evil.example:80", 400)])  # fmt: skip
def test_only_localhost_names_are_served_by_default(bot, host, status):  # noqa: F811
    with _client(bot) as c:
        r = c.get("/healthz", headers={"host": host})
        assert r.status_code == status
        if status == 400:
            assert "is not served" in r.json()["error"] and "--allowed-host" in r.json()["error"]


def test_allowed_hosts_are_configurable(bot):  # noqa: F811
    with TestClient(create_app(bot, Limits(), allowed_hosts=("seq.lab",)), base_url="http://seq.lab") as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/healthz", headers={"host": "localhost"}).status_code == 400


# ---- 11. one rule for names in /v1/sequences and /v1/chat -----------------------------------------


def test_sequences_and_chat_accept_the_same_names(bot):  # noqa: F811
    with _client(bot) as c:
        r = c.post("/v1/sequences", json={"fasta": f">gene(1)\n{DNA}\n"})
        assert r.status_code == 400 and "cannot be referred to as @name" in r.json()["error"]
        r = c.post("/v1/chat", json={**CHAT, "sequences": {"gene(1)": DNA}})
        assert r.status_code == 400 and "cannot be referred to as @name" in r.json()["error"]
        r = c.post("/v1/sequences", json={"fasta": f">名前 a gene\n{DNA}\n"})
        assert r.status_code == 200 and r.json()[0]["name"] == "名前"
        r = c.post("/v1/chat", json={**CHAT, "messages": [{"role": "user", "content": "What is @名前?"}],
                                     "sequences": {"名前": DNA}})  # fmt: skip
        assert r.status_code == 200, r.text
