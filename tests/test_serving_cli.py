"""`seqchat ask`, `seqchat chat` and `seqchat predict` on a tiny saved model."""

import csv
import io
import subprocess
import sys

import pytest

from seqchat.cli.chat import ChatSession
from seqchat.errors import SeqChatInputError
from seqchat.serving.predict import predict_fasta
from serving_fixtures import DNA, PROT, bot, fasta_file, model_dir  # noqa: F401


def _seqchat(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqchat.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=600)  # fmt: skip


def test_ask_on_a_fasta_file(model_dir, fasta_file, bot):  # noqa: F811
    q = "Is there a promoter in @lacZ_upstream?"
    proc = _seqchat("ask", q, "--fasta", str(fasta_file), "--model", str(model_dir), "--max-new-tokens", "6",
                    "--confidence")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == bot.ask(q, {"lacZ_upstream": DNA}, max_new_tokens=6).text
    assert "confidence" in proc.stderr and "Traceback" not in proc.stderr


def test_ask_json_and_version(model_dir, fasta_file, bot):  # noqa: F811
    import json

    from seqchat import __version__

    q = "Is there a promoter in @lacZ_upstream?"
    proc = _seqchat("ask", q, "--fasta", str(fasta_file), "--model", str(model_dir), "--max-new-tokens", "6",
                    "--task", "promoter_300_all", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(proc.stdout)
    assert rec["answer"] == bot.ask(q, {"lacZ_upstream": DNA}, max_new_tokens=6).text
    assert 0 <= rec["confidence"] <= 1 and sum(rec["probabilities"].values()) == pytest.approx(1.0)
    version = _seqchat("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"seqchat {__version__}"


def test_chat_session_in_a_terminal(model_dir, fasta_file, tmp_path):  # noqa: F811
    script = "\n".join([
        "/list", f"/load {fasta_file}", "/list",
        "/paste mine", "ACGTACGTTATAAAGG", "CCAATT", "",
        "Is @mine a promoter?", "/confidence", "And @lacI?", "what about @nobody?",
        "/forget lacI", "/bogus", "/quit", "never read",
    ])  # fmt: skip
    proc = _seqchat("chat", "--model", str(model_dir), "--max-new-tokens", "4", stdin=script)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "no sequences loaded" in out
    assert "loaded @lacZ_upstream: DNA, 97 nt" in out and "loaded @lacI: PROTEIN, 51 aa" in out
    assert "loaded @mine: DNA, 22 nt" in out
    assert out.count("seqchat> ") == 2 and "confidence display on" in out and "[confidence" in out
    assert "forgot @lacI" in out and "starts anew" in out
    assert "seqchat: error: no sequence is named @nobody" in proc.stderr
    assert "seqchat: error: unknown command /bogus" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_chat_session_keeps_history_and_resets(bot, fasta_file):  # noqa: F811
    out, err = io.StringIO(), io.StringIO()
    s = ChatSession(bot, bot.read_fasta(fasta_file), out=out, err=err, max_new_tokens=3)
    lines = iter([">pasted one\n", "MKV\n", "LLA\n", "\n"])
    assert s.handle("Is @lacZ_upstream a promoter?", lambda: None)
    assert len(s.history) == 2 and s.history[1]["role"] == "assistant"
    assert s.handle(next(lines), lambda: next(lines, None))
    assert s.pool["pasted"].residues == "MKVLLA" and s.pool["pasted"].modality == "protein"
    s.handle("/reset", lambda: None)
    assert s.history == []
    s.handle("/task promoter_300_all", lambda: None)
    s.handle("/confidence", lambda: None)
    s.handle("Is @lacZ_upstream a promoter?", lambda: None)
    assert "not a promoter" in out.getvalue() and "a promoter" in out.getvalue()
    s.handle("/forget nothing", lambda: None)
    assert "no sequence named nothing" in err.getvalue()
    assert not s.handle("/quit", lambda: None)


def test_predict_cli_reports_malformed_records_and_resumes(model_dir, tmp_path):  # noqa: F811
    fa = tmp_path / "in.fa"
    fa.write_text(f">a\n{DNA}\n>bad\nACGTJJ\n>b x\n{DNA[:50]}\n>a\nACGT\n>prot\n{PROT}\n>c\n{DNA[10:90]}\n")
    out = tmp_path / "out.csv"
    proc = _seqchat("predict", "--task", "promoter_300_all", "--fasta", str(fa), "--out", str(out),
                    "--model", str(model_dir), "--chunk-size", "2")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open()))
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    assert list(rows[0]) == ["id", "prediction", "label", "p_0", "p_1", "answer"]
    assert all(abs(float(r["p_0"]) + float(r["p_1"]) - 1) < 1e-4 for r in rows)
    err = proc.stderr
    assert "record 'bad' skipped: sequence 'bad': character 'J' at position 5" in err
    assert "record 'a' skipped: its id appears earlier" in err
    assert "record 'prot' skipped: sequence 'prot' is PROTEIN, but task 'promoter_300_all' reads DNA" in err
    assert "3 sequences predicted" in err and "3 skipped: bad, a, prot" in err
    assert "Traceback" not in err

    bad = _seqchat("predict", "--task", "promoter_strength_leaf", "--fasta", str(fa), "--out", str(out),
                   "--model", str(model_dir))  # fmt: skip
    assert bad.returncode == 2 and "not an earlier run of the same task" in bad.stderr


def test_predict_resumes_after_a_torn_write(bot, tmp_path):  # noqa: F811
    fa = tmp_path / "in.fa"
    fa.write_text("".join(f">s{i}\n{DNA[i : i + 60]}\n" for i in range(7)))
    out = tmp_path / "out.csv"
    first = predict_fasta(bot.model, "promoter_300_all", fa, out, chunk_size=3, progress=False)
    assert first.predicted == 7
    full = out.read_text()
    lines = full.splitlines(keepends=True)
    # a run killed in the middle of writing row s4: rows s0-s3 and half of s4 are on disk
    out.write_text("".join(lines[:5]) + lines[5][:7])
    again = predict_fasta(bot.model, "promoter_300_all", fa, out, chunk_size=3, progress=False)
    assert again.already_done == 4 and again.predicted == 3
    assert out.read_text() == full
    done = predict_fasta(bot.model, "promoter_300_all", fa, out, progress=False)
    assert done.predicted == 0 and done.already_done == 7


def test_predict_sharded_over_two_processes_gives_the_rows_of_one(model_dir, tmp_path):  # noqa: F811
    fa = tmp_path / "in.fa"
    records = [f">s{i}\n{DNA[i : i + 50 + i]}\n" for i in range(9)] + [">s3\nACGT\n", ">bad\nACGTJJ\n"]
    fa.write_text("".join(records))
    common = ["predict", "--task", "promoter_300_all", "--fasta", str(fa), "--model", str(model_dir), "--no-progress"]
    one = _seqchat(*common, "--out", str(tmp_path / "one.csv"))
    assert one.returncode == 0, one.stderr
    procs = [subprocess.Popen([sys.executable, "-m", "seqchat.cli", *common, "--out", str(tmp_path / f"part{i}.csv"),
                               "--num-shards", "2", "--shard-index", str(i)], stderr=subprocess.PIPE, text=True)
             for i in range(2)]  # fmt: skip
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs

    def rows(name):
        with open(tmp_path / name, newline="") as fh:
            return {r["id"]: r for r in csv.DictReader(fh)}

    parts = [rows("part0.csv"), rows("part1.csv")]
    assert not set(parts[0]) & set(parts[1])  # each record is predicted by one shard only
    merged, single = {**parts[0], **parts[1]}, rows("one.csv")
    assert sorted(merged) == sorted(single) == sorted(f"s{i}" for i in range(9))  # duplicate s3 and bad skipped once
    for rid, row in single.items():
        assert merged[rid]["prediction"] == row["prediction"]
        assert float(merged[rid]["p_1"]) == pytest.approx(float(row["p_1"]), abs=1e-5)
    assert "duplicate" in errs[0] + errs[1] or "appears earlier" in errs[0] + errs[1]
    bad = _seqchat(*common, "--out", str(tmp_path / "x.csv"), "--num-shards", "2", "--shard-index", "2")
    assert bad.returncode == 2 and "--shard-index must be in 0..1" in bad.stderr


def test_predict_generation_tasks_write_answers(bot, tmp_path):  # noqa: F811
    fa = tmp_path / "p.fa"
    fa.write_text(f">p1\n{PROT}\n>p2\n{PROT[:30]}\n")
    out = tmp_path / "o.csv"
    s = predict_fasta(bot.model, "protein_meltome", fa, out, max_new_tokens=3, progress=False)
    assert s.predicted == 2
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["id", "prediction", "answer", "parse_failed"]
    with pytest.raises(SeqChatInputError, match="does not exist"):
        predict_fasta(bot.model, "protein_meltome", tmp_path / "missing.fa", out, progress=False)
