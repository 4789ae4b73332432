"""User data: CSV/TSV, labelled FASTA, JSONL (and the Hugging Face schema via a local file) through the same build."""

from __future__ import annotations

import gzip
import json

import pytest

from seqchat.cli import main
from seqchat.data.build import load_split, read_records
from seqchat.data.userdata import read_user_examples, register_user_task
from seqchat.errors import SeqChatInputError
from seqchat.tasks.registry import TASKS

# real promoter sequences (GUE prom_core_tata style, 70 bp) are not needed: short valid DNA is enough here
SEQS = ["ACGTACGTTAGCTAGCTAGGATCC", "TTGACAGCTAGCTCAGTCCTAGG", "GGGCCCAAATTTGGGCCCAAATT", "ATATATATCGCGCGCGATATATAT",
        "CCGGAATTCCGGAATTCCGGAAT", "TATAAAAGGCGCGCCGATCGATC", "AAACCCGGGTTTAAACCCGGGTT", "GCGCGCATATATGCGCGCATATA"]


@pytest.fixture(autouse=True)
def _forget_user_tasks():
    yield
    for name in [n for n, t in TASKS.items() if t.group == "user"]:
        del TASKS[name]


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_csv_tsv_fasta_jsonl_and_gz(tmp_path):
    rows = "\n".join(f"{s},{i % 2}" for i, s in enumerate(SEQS))
    csv_p = _write(tmp_path / "d.csv", "sequence,label\n" + rows + "\n")
    tsv_p = _write(tmp_path / "d.tsv", "sequence\tlabel\n" + rows.replace(",", "\t") + "\n")
    fa_p = _write(tmp_path / "d.fasta", "".join(f">s{i} label={i % 2}\n{s}\n" for i, s in enumerate(SEQS)))
    fa2_p = _write(tmp_path / "d2.fa", "".join(f">s{i} some words {i % 2}\n{s}\n" for i, s in enumerate(SEQS)))
    js_p = _write(
        tmp_path / "d.jsonl", "".join(json.dumps({"sequence": s, "label": i % 2}) + "\n" for i, s in enumerate(SEQS))
    )
    gz_p = tmp_path / "d.csv.gz"
    gz_p.write_bytes(gzip.compress(csv_p.read_bytes()))
    for p in (csv_p, tsv_p, fa_p, fa2_p, js_p, gz_p):
        ex = read_user_examples(p, "binary")
        assert [e.residues for e in ex] == SEQS and [e.target for e in ex] == [i % 2 for i in range(len(SEQS))]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.csv", "seq,label\nACGT,1\n", "no column 'sequence'"),
        ("b.csv", "sequence,label\nACGT,1\nACXT,0\nAAAA,1\n", "line 3.*'X' at position 3"),
        ("c.csv", "sequence,label\nACGT,maybe\n", "line 2.*binary label 'maybe'"),
        ("d.csv", "sequence,label\nACGT,1,extra\n", "line 2: 3 fields"),
        ("e.jsonl", '{"sequence": "ACGT", "label": 1}\n{oops\n', "line 2: not valid JSON"),
        ("f.fasta", ">s1\nACGT\n", "record 1 .*no label"),
        ("g.csv", "", "empty"),
        ("h.txt", "ACGT 1\n", "unknown file type"),
        ("i.csv", "sequence,label\n,1\n", "line 2: the sequence is empty"),
    ],
)
def test_malformed_input_names_file_line_and_fix(tmp_path, name, text, message):
    p = _write(tmp_path / name, text)
    with pytest.raises(SeqChatInputError, match=message):
        read_user_examples(p, "binary")


def test_regression_labels_and_mixed_modalities(tmp_path):
    p = _write(tmp_path / "r.csv", "sequence,label\nACGT,1.5\nACGA,abc\n")
    with pytest.raises(SeqChatInputError, match="line 3: regression label 'abc' is not a number"):
        read_user_examples(p, "regression")
    p = _write(tmp_path / "m.csv", "sequence,label\nACGT,1\nMKWVLLE,0\n")
    with pytest.raises(SeqChatInputError, match="line 3: .*is this a protein"):
        read_user_examples(p, "binary")


def test_hf_name_without_hub_is_a_clear_error():
    with pytest.raises(SeqChatInputError, match="hf:InstaDeepAI/nucleotide_transformer_downstream_tasks"):
        read_user_examples("hf:InstaDeepAI/nucleotide_transformer_downstream_tasks:promoter_all", "binary")


def test_nt_downstream_schema_builds_like_a_registered_task(tmp_path):
    """Same columns as the NT downstream-tasks hub dataset (sequence, name, label), from local files."""
    train = _write(tmp_path / "train.csv", "sequence,name,label\n" + "".join(
        f"{s},chr1_{i},{i % 2}\n" for i, s in enumerate(SEQS)))
    test = _write(
        tmp_path / "test.csv", "sequence,name,label\nCAGTCAGTCAGTCAGTACGTAGC,t1,1\nACGTACGTTAGCTAGCTAGGATCC,t2,0\n"
    )
    spec = register_user_task("my_promoters", train, test, "binary", "dna", positive="a promoter")
    assert spec.metrics[0] == "mcc" and spec.labels == {0: "not a promoter", 1: "a promoter"}
    train_rows = load_split("my_promoters", "train") + load_split("my_promoters", "valid")
    assert "ACGTACGTTAGCTAGCTAGGATCC" not in {e.residues for e in train_rows}  # in the test file, so removed
    assert len(load_split("my_promoters", "test")) == 2


def test_cli_build_with_a_user_task_yaml(tmp_path, capsys):
    _write(tmp_path / "train.tsv", "sequence\tlabel\n" + "".join(f"{s}\t{i * 0.5:.2f}\n" for i, s in enumerate(SEQS)))
    spec = _write(tmp_path / "task.yaml", "name: my_activity\ntrain: train.tsv\ntask_type: regression\n"
                  "modality: dna\nquantity: reporter activity\ndecimals: 2\n")
    out = tmp_path / "out"
    assert main(["data", "build", "--out", str(out), "--user-task", str(spec)]) == 0
    recs = read_records(out, "train") + read_records(out, "test")
    singles = [r for r in recs if r["task"] == "my_activity" and r["kind"] == "single"]
    assert singles and all(f"{r['target']:.2f}" in r["messages"][-1]["content"] for r in singles)
    bad = _write(tmp_path / "bad.yaml", "name: x\ntrain: nowhere.csv\n")
    assert main(["data", "build", "--out", str(out), "--user-task", str(bad)]) == 2
    assert "does not exist" in capsys.readouterr().err
