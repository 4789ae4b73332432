"""Issue 14, model loading, CLI and Python API items: a broken model folder, a broken input file or a bad
argument ends in one clear error (`seqchat: error: ...`, exit 2), never a traceback or a silent wrong answer,
and nothing the user owns is modified."""

import csv
import gzip
import io
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from seqchat.cli import main
from seqchat.cli.chat import ChatSession
from seqchat.errors import SeqChatInputError
from seqchat.modeling.model import SeqChatForConditionalGeneration
from seqchat.modeling.sequences import as_sequence, read_fasta
from serving_fixtures import DNA, PROT, bot, fasta_file, model_dir  # noqa: F401


@pytest.fixture
def folder(model_dir, tmp_path):  # noqa: F811
    """A private copy of the tiny model folder, free to damage."""
    d = tmp_path / "model"
    shutil.copytree(model_dir, d)
    state = {}
    for shard in sorted(d.glob("model*.safetensors")):  # one file, so a test can edit any key
        state.update(load_file(str(shard)))
        shard.unlink()
    save_file(state, str(d / "model.safetensors"), metadata={"format": "pt"})
    return d


def _rewrite(folder, change) -> None:
    state = load_file(str(folder / "model.safetensors"))
    change(state)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})


def _cli(capsys, *argv: str) -> tuple[int, str]:
    """Run `seqchat` in-process; argparse errors exit 2 too."""
    try:
        code = main(list(argv))
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.fixture
def generations(bot):  # noqa: F811
    """Counts the model's generate calls (to show an error comes before any model work)."""
    calls = []
    real = bot.model.generate

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    bot.model.generate = counting
    yield calls
    bot.model.generate = real


# ---- 6. a broken model folder does not load -------------------------------------------------------


def _first_projector_key(state: dict) -> str:
    return next(k for k in state if k.startswith("projector."))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop(_first_projector_key(s)), "missing keys projector."),
        (lambda s: s.update(extra=torch.zeros(2)), "unexpected keys extra"),
        (lambda s: s.update({_first_projector_key(s): torch.zeros(3, 1)}), "shape mismatches projector."),
        (lambda s: s[_first_projector_key(s)].view(-1).__setitem__(0, float("nan")), "non-finite"),
    ],
)
def test_weights_that_do_not_fit_stop_loading_naming_folder_and_keys(folder, change, message):
    _rewrite(folder, change)
    with pytest.raises(SeqChatInputError, match=message) as e:
        SeqChatForConditionalGeneration.from_pretrained(folder)
    assert str(folder) in str(e.value)


def test_a_deleted_shard_or_no_weights_stop_loading(folder, tmp_path):
    sharded = tmp_path / "sharded"
    SeqChatForConditionalGeneration.from_pretrained(folder).save_pretrained(sharded, shard_mb=0.2)
    shards = sorted(sharded.glob("model-*.safetensors"))
    assert len(shards) > 2
    shards[1].unlink()
    with pytest.raises(SeqChatInputError, match=f"lacks weight shard\\(s\\) {shards[1].name}"):
        SeqChatForConditionalGeneration.from_pretrained(sharded)
    (folder / "model.safetensors").unlink()  # only config.json left
    with pytest.raises(SeqChatInputError, match="holds no model\\*.safetensors weights"):
        SeqChatForConditionalGeneration.from_pretrained(folder)


# ---- 7. corrupt files give one error line -------------------------------------------------------


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "model.safetensors").write_bytes(b"\xff" * 64), "not a readable safetensors file"),
        (lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:5000]),
         "not a readable safetensors file"),
        (lambda d: (d / "config.json").write_text("{not json"), "is not a valid seqchat config"),
        (lambda d: (d / "config.json").write_text('{"decoder": 5, "encoders": []}'), "config.json"),
        (lambda d: (d / "calibration.json").write_text("[1, 2"), "is not a valid calibration file"),
        (lambda d: (d / "calibration.json").write_text('{"tasks": {"x": {"a": 1}}}'), "calibration"),
    ],
)  # fmt: skip
def test_corrupt_model_files_give_one_error_line(folder, capsys, damage, message):
    damage(folder)
    code, err = _cli(capsys, "ask", "What is @s?", "--seq", f"s={DNA}", "--model", str(folder))
    assert code == 2
    assert err.startswith("seqchat: error: ") and message in err and err.count("\n") == 1, err


# ---- 8. predict --out never damages a file it did not write ---------------------------------------


def test_predict_refuses_a_foreign_out_file_without_touching_it(fasta_file, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "mine.csv"
    out.write_bytes(b"a\nb")  # no final newline: the torn-line repair must not run on it
    code, err = _cli(capsys, "predict", "--task", "promoter_300_all", "--fasta", str(fasta_file), "--out",
                     str(out), "--model", str(tmp_path / "not_loaded"))  # fmt: skip
    assert code == 2 and "it is not an earlier run of the same task" in err
    assert out.read_bytes() == b"a\nb"


# ---- 9. a failing chat command keeps the session --------------------------------------------------


def test_chat_survives_a_truncated_gzip_load(bot, tmp_path):  # noqa: F811
    broken = tmp_path / "broken.fa.gz"
    broken.write_bytes(gzip.compress((f">x\n{DNA}\n" * 50).encode())[:60])
    out, err = io.StringIO(), io.StringIO()
    s = ChatSession(bot, {"p": as_sequence(PROT, "p")}, out=out, err=err, max_new_tokens=2)
    assert s.handle("What is @p?", lambda: None)
    history, pool = list(s.history), dict(s.pool)
    assert s.handle(f"/load {broken}", lambda: None)
    assert s.handle(f"/load {tmp_path}", lambda: None)
    assert "not a readable gzip file" in err.getvalue() and "is a directory" in err.getvalue()
    assert s.history == history and s.pool == pool
    assert s.handle("/list", lambda: None) and "@p\tPROTEIN" in out.getvalue()


# ---- 10. CLI errors instead of tracebacks ---------------------------------------------------------


@pytest.fixture
def bad_fastas(tmp_path):
    gz = gzip.compress("".join(f">x{i}\n{DNA}\n" for i in range(200)).encode())
    files = {
        "truncated.fa.gz": gz[: len(gz) // 2],
        "plain.fa.gz": f">x\n{DNA}\n".encode(),
        "binary.fa": bytes(range(256)) * 4,
        "latin1.fa": ">caf\xe9\nACGT\n".encode("latin-1"),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return tmp_path


@pytest.mark.parametrize(
    ("name", "message"),
    [("truncated.fa.gz", "not a readable gzip file"), ("plain.fa.gz", "not a readable gzip file"),
     ("binary.fa", "is not UTF-8 text"), ("latin1.fa", "is not UTF-8 text"), (".", "is a directory")],
)  # fmt: skip
def test_unreadable_fasta_files_are_cli_errors(bad_fastas, capsys, name, message):
    path = str(bad_fastas / name)
    code, err = _cli(capsys, "ask", "What is @x?", "--fasta", path, "--model", str(bad_fastas / "none"))
    assert code == 2 and err.startswith("seqchat: error: ") and message in err, err
    out = str(bad_fastas / "out.csv")
    code, err = _cli(capsys, "predict", "--task", "promoter_300_all", "--fasta", path, "--out", out,
                     "--model", str(bad_fastas / "none"))  # fmt: skip
    assert code == 2 and message in err, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["predict", "--task", "promoter_300_all", "--out", "{tmp}", "--fasta", "{fa}"], "is a directory"),
        (["predict", "--task", "promoter_300_all", "--out", "{fa}/x.csv", "--fasta", "{fa}"],
         "cannot be created"),
        (["predict", "--task", "promoter_300_all", "--out", "{tmp}/o.csv", "--fasta", "{fa}", "--batch-size", "0"],
         "argument --batch-size: 0 is too small"),
        (["ask", "q @x", "--seq", "x=ACGT", "--max-new-tokens", "0"], "argument --max-new-tokens: 0 is too small"),
        (["ask", "q @x", "--seq", "x=ACGT", "--max-new-tokens", "-3"], "argument --max-new-tokens: -3"),
        (["ask", "q @x", "--seq", "x=ACGT", "--task", "promotor"], "unknown task 'promotor'"),
        (["ask", "q @x", "--seq", "x=ACGT", "--task", "protein_meltome"], "is regression"),
        (["serve", "--port", "70000"], "is not a TCP port"),
    ],
)  # fmt: skip
def test_bad_arguments_are_refused_before_the_model_loads(fasta_file, tmp_path, capsys, argv, message):  # noqa: F811
    # the model folder does not exist: an error about it would mean the model loaded first
    argv = [a.format(tmp=tmp_path, fa=fasta_file) for a in argv] + ["--model", str(tmp_path / "no_model")]
    code, err = _cli(capsys, *argv)
    assert code == 2 and message in err, err


def test_ctrl_c_during_predict_says_how_to_resume(model_dir, tmp_path, capsys, monkeypatch):  # noqa: F811
    import seqchat.serving.predict as predict_module

    real = predict_module.prediction_rows
    calls = []

    def interrupted(*a, **k):  # the user presses Ctrl-C while the second chunk is predicted
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(predict_module, "prediction_rows", interrupted)
    fa, out = tmp_path / "three.fa", tmp_path / "p.csv"
    fa.write_text("".join(f">d{i}\n{DNA[i:]}\n" for i in range(3)))
    argv = ["predict", "--task", "promoter_300_all", "--fasta", str(fa), "--out", str(out),
            "--model", str(model_dir), "--chunk-size", "1", "--no-progress"]  # fmt: skip
    code, err = _cli(capsys, *argv)
    assert code == 130 and "run the same command again to resume" in err
    assert [r[0] for r in csv.reader(out.open())] == ["id", "d0"]
    monkeypatch.setattr(predict_module, "prediction_rows", real)
    assert _cli(capsys, *argv)[0] == 0
    assert [r[0] for r in csv.reader(out.open())] == ["id", "d0", "d1", "d2"]


# ---- 11. silent wrong input ----------------------------------------------------------------------


def test_non_ascii_ids_are_recognised(bot, tmp_path, generations):  # noqa: F811
    fa = tmp_path / "u.fa"
    fa.write_text(f">ñame first\n{DNA}\n>名前\n{PROT}\n", encoding="utf-8")
    pool = bot.read_fasta(fa)
    for name in ("ñame", "名前"):
        batch = bot.model.processor([{"role": "user", "content": f"What is @{name}?"}], {name: pool[name]})
        assert (batch["input_ids"] == bot.model.processor.placeholder_id).any()
        assert bot.ask(f"What is @{name}?", pool, max_new_tokens=2) is not None


def test_dna_with_a_stray_u_is_not_read_as_protein():
    with pytest.raises(SeqChatInputError, match="mixes T and U"):
        as_sequence("ACGTACGTUACGT", "s")
    with pytest.raises(SeqChatInputError, match="mixes T and U"):
        read_fasta(">s\nACGTTGCAUGCA\n")
    assert as_sequence("ACGTACGTUACGT", "s", modality="protein").modality == "protein"  # when said so


def test_a_task_of_the_wrong_modality_is_refused_before_model_work(bot, generations):  # noqa: F811
    with pytest.raises(SeqChatInputError, match="task 'protein_solubility' reads PROTEIN"):
        bot.predict("protein_solubility", {"d": DNA})
    with pytest.raises(SeqChatInputError, match="reads PROTEIN"):
        bot.ask("Is @d soluble?", {"d": DNA}, task="protein_solubility")
    with pytest.raises(SeqChatInputError, match="is PROTEIN, but task 'promoter_300_all' reads DNA"):
        bot.ask("Is @p a promoter?", {"p": as_sequence(PROT, "p")}, task="promoter_300_all")
    assert generations == []


# ---- 12. Python API arguments are checked first ----------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda b: b.predict("promoter_300_all", {"s": 123}), "must be a string of residues, got int"),
        (lambda b: b.ask("What is @s?", {"s": DNA}, task=123), "task must be a task name"),
        (lambda b: b.ask("What is @s?", {"s": DNA}, history=[{"role": "user"}]), "message 1 must be a dict"),
        (lambda b: b.ask("What is @s?", {"s": DNA}, history="hello"), "messages must be a list"),
        (lambda b: b.ask(5, {"s": DNA}), "question must be text"),
        (lambda b: b.ask("What is @s?", {"s": DNA}, max_new_tokens=0), "max_new_tokens must be"),
        (lambda b: b.chat([{"role": "user", "content": 7}], {"s": DNA}), "content must be text"),
    ],
)
def test_bad_api_arguments_raise_input_errors_before_generating(bot, generations, call, message):  # noqa: F811
    with pytest.raises(SeqChatInputError, match=message):
        call(bot)
    assert generations == []


def test_prompt_past_the_context_is_refused_in_the_processor(bot, generations):  # noqa: F811
    import resource

    proc = bot.model.processor
    refs = proc.context_length // proc.num_tokens("dna", len(DNA)) + 1
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with pytest.raises(SeqChatInputError, match=f"the decoder reads at most {proc.context_length}"):
        bot.ask(" ".join(["@s"] * refs), {"s": DNA})
    assert generations == []
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss < 50  # MB
    assert json.loads(json.dumps(proc.context_length)) == bot.model.decoder.config.max_position_embeddings
