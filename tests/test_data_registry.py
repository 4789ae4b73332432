"""Task registry and templates: every task complete, templates disjoint, counts match the source files."""

from __future__ import annotations

import collections
import csv
import gzip
import io
import itertools
import re
import tarfile
import zipfile

import pytest

from seqchat.data.build import task_splits
from seqchat.data.paths import data_dir
from seqchat.data.records import reverse_complement, seq_key
from seqchat.data.sources.pairs import pair_key
from seqchat.errors import SeqChatInputError
from seqchat.modeling.sequences import MODALITIES
from seqchat.tasks import templates as T
from seqchat.tasks.registry import TASK_TYPES, TASKS, get_task

pytestmark = pytest.mark.integration
BUILTIN = [n for n, t in TASKS.items() if t.group != "user"]
FAMILIES = sorted({TASKS[n].templates for n in BUILTIN})
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def test_registry_covers_every_shared_dataset():
    groups = collections.Counter(TASKS[n].group for n in BUILTIN)
    assert sum(n.startswith("yeast_h") for n in BUILTIN) == 10
    assert {"promoter_300_all", "promoter_300_notata", "promoter_300_tata"} <= set(BUILTIN)
    assert {"core_promoter_all", "core_promoter_notata", "core_promoter_tata"} <= set(BUILTIN)
    assert (
        sum(n.startswith("tf_human_") for n in BUILTIN) == 5 and sum(n.startswith("tf_mouse_") for n in BUILTIN) == 5
    )
    assert sum(n.startswith("polya_") for n in BUILTIN) == 6 and groups["plant regulatory activity"] == 4
    for name in ("splice_sites_human", "enhancers", "enhancer_types", "plant_splice_donor", "plant_splice_acceptor",
                 "lncrna_m_esculenta", "lncrna_t_aestivum", "ncrna_family", "crispr_on_target", "protein_meltome",
                 "protein_gb1", "protein_solubility", "protein_stability", "protein_ec", "deepgene_promoter_60",
                 "deepgene_promoter_300"):
        assert name in TASKS


@pytest.mark.parametrize("name", BUILTIN)
def test_every_task_has_labels_metric_split_rule_and_source(name):
    t = get_task(name)
    assert t.task_type in TASK_TYPES and all(m in MODALITIES for m in t.inputs)
    assert t.metrics and t.split_rule and t.source and t.licence and t.group and t.title
    if t.task_type in ("binary", "multiclass"):
        assert len(t.labels) >= 2 and all(isinstance(v, str) and v for v in t.labels.values())
    if t.task_type == "binary":
        assert set(t.labels) == {0, 1}
    if t.task_type == "regression":
        assert t.unit and t.value_range and t.value_range[0] < t.value_range[1] and t.decimals >= 0
        assert "quantity" in T.fill_values(t, {"cell_line": "HeLa"})
    if t.task_type == "binary":
        assert "positive_np" in t.fills


def test_unknown_task_is_a_clear_error():
    with pytest.raises(SeqChatInputError, match="unknown task"):
        get_task("promoter_strength")


def _norm(s: str) -> set[str]:
    return set(re.sub(r"\{[a-z_]+\}", "X", s.lower()).replace("?", " ").replace(".", " ").replace(",", " ").split())


@pytest.mark.parametrize("fam", FAMILIES)
def test_template_family_sizes_and_disjointness(fam):
    f = T.family(fam)
    assert len(f.questions_train) >= 20 and len(f.questions_test) >= 5
    assert not set(f.questions_train) & set(f.questions_test)
    for key, answers in f.answers.items():
        assert len(answers) >= 10, key
        assert len(set(answers)) == len(answers)
    qs = list(f.questions_train) + list(f.questions_test)
    assert len(set(qs)) == len(qs)
    # no near-duplicates: every pair of questions differs in a good share of its words
    for a, b in itertools.combinations(qs, 2):
        ja, jb = _norm(a), _norm(b)
        assert len(ja & jb) / len(ja | jb) < 0.85, (a, b)
    if "positive" in f.answers:
        assert not set(f.answers["positive"]) & set(f.answers["negative"])
        for key in ("positive", "negative"):
            assert len(f.confidence[key]) >= 5
            assert not set(f.confidence[key]) & set(f.answers[key]), "confidence candidates must be unseen in training"


def _sample_meta(name):
    return dict(task_splits(name).test[0].meta)


@pytest.mark.parametrize("name", BUILTIN)
def test_all_templates_render_and_answers_state_the_target(name):
    t = get_task(name)
    meta = _sample_meta(name)
    names = ["s", "s2"] if t.is_pair else ["s"]
    values = {**T.fill_values(t, meta), **T.seq_values(t, names)}
    for q in T.family(t.templates).questions_train + T.family(t.templates).questions_test:
        text = T.render(q, values)
        assert all(f"@{n}" in text for n in names) and "{" not in text
    ex = task_splits(name).test[0]
    targets = [ex.target] + ([0, 1] if t.task_type == "binary" else list(t.labels) if t.labels else [])
    for target in targets:
        for tmpl in T.answer_templates(t, target):
            text = T.render(tmpl, {**T.fill_values(t, meta), ("value" if t.task_type == "regression" else "label"):
                                   T.target_text(t, target)})
            if t.task_type == "regression":
                assert NUMBER.findall(text) == [t.format_value(target)], text
            elif t.task_type == "multiclass":
                assert t.label_name(target) in text
    if t.task_type == "binary":
        cands = T.confidence_candidates(name, meta)
        assert len(cands[0]) >= 5 and len(cands[1]) >= 5
        train_answers = {T.render(a, T.fill_values(t, meta)) for k in (0, 1) for a in T.answer_templates(t, k)}
        assert not (set(cands[0]) | set(cands[1])) & train_answers
    if t.task_type in ("binary", "multiclass"):
        assert set(T.canonical_answers(name, meta)) == set(t.labels)
    names = ["x", "y"] if t.is_pair else ["x"]
    q = T.render_test_question(name, names if t.is_pair else "x", 0, meta)
    assert "@x" in q and q == T.render(T.family(t.templates).questions_test[0], {**T.fill_values(t, meta),
                                                                                 **T.seq_values(t, names)})


# ---------------------------------------------------------------------- counts against the source files


def _gz_lines(path):
    with gzip.open(path, "rt") as fh:
        return sum(1 for line in fh if line.strip())


def _count_source(name: str) -> dict[str, int]:
    """Count records straight from the files, independently of the loaders."""
    t, root = get_task(name), data_dir()
    a = t.loader_args
    if t.loader == "label_csv":
        return {s: _gz_lines(root / a["folder"] / f"{s}.csv.gz") - 1 for s in a["splits"]}
    if t.loader == "pgb_jsonl":
        return {s: _gz_lines(root / "dna/plant_pgb" / f"{a['stem']}.{s}.jsonl.gz") for s in ("train", "test")}
    if t.loader == "ienhancer":
        out = {}
        for s in ("train", "test"):
            with gzip.open(root / a["folder"] / f"{s}.txt.gz", "rt") as fh:
                out[s] = sum(line.startswith(">") for line in fh)
        return out
    if t.loader == "nrc_fasta":
        out = {}
        for s in ("train", "test"):
            with gzip.open(root / f"rna/ncrna_nrc/{s}.fasta.gz", "rt") as fh:
                out[s] = sum(line.startswith(">") for line in fh)
        return out
    if t.loader == "deepsol":
        return {
            "dev": _gz_lines(root / "protein/deepsol/val_tgt.gz"),
            "test": _gz_lines(root / "protein/deepsol/test_tgt.gz"),
        }
    if t.loader == "flip":
        with zipfile.ZipFile(root / "protein/flip" / a["archive"]) as z:
            rows = list(csv.DictReader(io.TextIOWrapper(z.open(a["member"]), encoding="utf-8")))
        return dict(collections.Counter(
            "valid" if r["set"] == "train" and r.get("validation") == "True" else r["set"] for r in rows))
    if t.loader == "rocklin":
        with gzip.open(root / "protein/rocklin/rocklin2017_stability.csv.gz", "rt") as fh:
            rounds = collections.Counter(r["round"] for r in csv.DictReader(fh))
        return {"train": sum(v for k, v in rounds.items() if k != "rd4"), "test": rounds["rd4"]}
    if t.loader == "clean_ec":
        return {"train": _gz_lines(root / "protein/ec_clean/split10.csv.gz") - 1,
                "test": _gz_lines(root / "protein/ec_clean/new.csv.gz") - 1}
    if t.loader == "deepcrispr":
        with tarfile.open(root / "rna/crispr_deepcrispr/deepcrispr_reg.tar.gz") as tar:
            n = sum(len(tar.extractfile(m).read().decode().splitlines())
                    for m in tar.getmembers() if m.name.startswith("paper_data2/ontar/") and m.isfile())
        return {"total": n}
    if t.loader == "aan":
        return {s: _gz_lines(root / f"multi/aan/{s}.csv.gz") - 1 for s in ("train", "valid", "test", "test_seen")}
    if t.loader == "rpi":
        return {
            s: _gz_lines(root / f"multi/rpi/npinter2_le1000nt_{s}.csv.gz") - 1 for s in ("train", "valid", "test")
        } | {
            n.lower(): _gz_lines(root / f"multi/rpi/{n}.csv.gz") - 1
            for n in ("RPI369", "RPI488", "RPI1807", "RPI2241")
        }
    if t.loader == "sirna":
        return {s: _gz_lines(root / f"multi/sirna/huesken_{s}.csv.gz") - 1 for s in ("train", "valid", "test")}
    return {}


@pytest.mark.parametrize("name", BUILTIN)
def test_counts_match_the_source_files(name):
    sp = task_splits(name)
    src = _count_source(name)
    rep = sp.report
    if "total" in src:
        assert sum(rep.source_counts.values()) == src["total"]
    elif src:
        assert rep.source_counts == src
    if get_task(name).is_pair:
        # every source record of every split (extra test sets included) is kept or removed for a stated reason
        for split, n in rep.source_counts.items():
            removed = sum(v for k, v in rep.removed.items() if k.startswith(f"{split}: "))
            assert len(sp.get(split)) + removed == n, split
        return
    # every source record is accounted for: kept in a split or removed for a stated reason
    train_like = sum(v for k, v in rep.source_counts.items() if k != "test")
    removed = sum(v for k, v in rep.removed.items() if not k.startswith("test"))
    assert len(sp.train) + len(sp.valid) + removed == train_like
    assert len(sp.test) == rep.source_counts["test"] - rep.removed.get("test: invalid characters", 0)
    assert len(sp.train) > 0 and len(sp.valid) > 0 and len(sp.test) > 0
    if rep.train_from == "dev":
        assert "train" not in rep.source_counts


def test_no_test_sequence_of_any_task_in_any_training_split():
    test_keys = set()
    single = [n for n in BUILTIN if not TASKS[n].is_pair]
    for n in single:
        for e in task_splits(n).test:
            k = seq_key(e.residues)
            test_keys |= {k, reverse_complement(k)} if TASKS[n].modality == "dna" else {k}
    for n in single:
        for split in ("train", "valid"):
            leaked = [e for e in task_splits(n).get(split) if seq_key(e.residues) in test_keys]
            assert not leaked, f"{n} {split}: {len(leaked)} test sequences"
        assert not (
            {seq_key(e.residues) for e in task_splits(n).train} & {seq_key(e.residues) for e in task_splits(n).valid}
        )


def test_gue_splice_label_meaning_from_the_sequences():
    rows = task_splits("splice_sites_human").train
    by = collections.defaultdict(list)
    for e in rows:
        by[e.target].append(e.residues)
    assert sum(s[198:200] == "AG" for s in by["acceptor"]) / len(by["acceptor"]) > 0.95
    assert sum(s[200:202] == "GT" for s in by["donor"]) / len(by["donor"]) > 0.95
    assert sum(s[200:202] == "GT" for s in by["neither"]) / len(by["neither"]) < 0.5


def test_rocklin_split_by_design_round_and_dev_as_train():
    sp = task_splits("protein_stability")
    assert {e.meta["round"] for e in sp.test} == {"rd4"}
    assert {e.meta["round"] for e in sp.train} == {"rd1", "rd2", "rd3"}
    assert task_splits("yeast_h3").report.train_from == "dev"
    assert task_splits("protein_solubility").report.train_from == "dev"
    # the 42 shared prom_core_all sequences named in DATA.md (and more across tasks) are removed
    assert task_splits("core_promoter_all").report.removed.get("train: also in this task's test", 0) >= 42


def test_crispr_split_keeps_each_sgrna_on_one_side():
    sp = task_splits("crispr_on_target")
    train = {e.residues for e in sp.train + sp.valid}
    assert not train & {e.residues for e in sp.test}
    assert {e.meta["cell_line"] for e in sp.test} == {"HCT116", "HEK293T", "HeLa", "HL-60"}


def test_data_dir_errors_clearly(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQCHAT_DATA_DIR", str(tmp_path))
    with pytest.raises(SeqChatInputError, match="DATA.md"):
        data_dir()


def test_no_test_pair_of_a_pair_task_in_its_training_splits():
    # pair tasks: one sequence may recur (antigens in AAN, proteins in RPI: stated in their split rules),
    # a pair may not
    for n in [n for n in BUILTIN if TASKS[n].is_pair]:
        sp = task_splits(n)
        held_out = {pair_key(e) for s in ("test", *sp.extra) for e in sp.get(s)}
        for split in ("train", "valid"):
            assert not {pair_key(e) for e in sp.get(split)} & held_out, (n, split)
        assert not {pair_key(e) for e in sp.train} & {pair_key(e) for e in sp.valid}
