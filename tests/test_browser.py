"""End to end in a real browser: Debian's chromium, driven by Playwright, against `seqchat serve`'s app.

Uploads a FASTA file on the page, asks a question about one of its sequences, and sees the answer with its
confidence and an attribution track drawn over the sequence; a slowed-down answer shows while it is generated.
"""

import os
import socket
import threading
import time

import pytest

from serving_fixtures import DNA, PROT, bot, fasta_file, model_dir, slow_steps  # noqa: F401

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _need_chromium() -> None:
    if not os.path.exists(CHROMIUM):
        # as root, scripts/install.sh installs chromium (CI): its absence there is a failure, not a skip
        if os.geteuid() == 0:
            pytest.fail(f"{CHROMIUM} is missing: run scripts/install.sh (apt-get install -y chromium)")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium (as root) to run the browser test")


@pytest.fixture(scope="module")
def server_url(bot):  # noqa: F811
    import uvicorn

    from seqchat.serving.server import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(bot), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            pytest.fail("the test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def test_upload_fasta_ask_and_see_the_answer(server_url, fasta_file, bot):  # noqa: F811
    _need_chromium()
    from playwright.sync_api import sync_playwright

    question = "Is there a promoter in @lacZ_upstream?"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server_url + "/")
            page.set_input_files("#fasta-file", str(fasta_file))
            page.wait_for_selector('.seq[data-name="lacI"]', timeout=20_000)
            assert page.inner_text('.seq[data-name="lacZ_upstream"]').startswith("@lacZ_upstream")
            assert "DNA, 97 nt" in page.inner_text('.seq[data-name="lacZ_upstream"]')
            page.fill("#max-tokens", "6")
            page.fill("#question", question)
            page.click("#send")
            page.wait_for_selector(".message.assistant .meta .confidence", timeout=60_000)
            answer = page.inner_text(".message.assistant .answer-text")
            assert answer == bot.ask(question, {"lacZ_upstream": DNA}, max_new_tokens=6).text
            assert page.inner_text(".message.assistant .confidence").startswith("confidence ")
            track = page.locator('.attribution[data-name="lacZ_upstream"] canvas')
            assert track.count() == 1
            assert "97 positions" in page.inner_text('.attribution[data-name="lacZ_upstream"]')
            # the track is drawn: some canvas pixels are coloured
            painted = track.evaluate(
                "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"
            )
            assert painted > 0
            # with each decoder step slowed down, the answer's text shows before the answer is complete
            history = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
            page.fill("#max-tokens", "12")
            page.fill("#question", "Describe @lacI.")
            with slow_steps(bot, 0.3):
                page.click("#send")
                partial = page.wait_for_function(
                    "() => { const m = [...document.querySelectorAll('.message.assistant')].pop();"
                    " const t = m.querySelector('.answer-text').textContent;"
                    " return t && t !== '…' && !m.querySelector('.meta') ? t : null; }",
                    timeout=30_000,
                ).json_value()
                page.wait_for_function(
                    "() => [...document.querySelectorAll('.message.assistant')].pop().querySelector('.meta')",
                    timeout=60_000,
                )
            full = page.locator(".message.assistant .answer-text").last.inner_text()
            assert full == bot.ask("Describe @lacI.", {"lacZ_upstream": DNA, "lacI": PROT}, history=history,
                                   max_new_tokens=12).text  # fmt: skip
            assert full.startswith(partial) and len(partial) < len(full)
            # a bad question shows the server's message, not a crash
            page.fill("#question", "And @lacY?")
            page.click("#send")
            page.wait_for_selector(".message.error", timeout=30_000)
            assert "no sequence is named @lacY" in page.inner_text(".message.error")
            assert errors == []
        finally:
            browser.close()
