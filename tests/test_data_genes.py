"""Gene records from the annotated genomes, the homology-aware split and the gene-function tasks."""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict

import pytest
from Bio.Seq import Seq

from seqchat.data.build import BuildConfig, task_records, task_splits
from seqchat.data.paths import data_dir
from seqchat.data.sources import genes as G
from seqchat.tasks.parsing import normalize_ec, parse_ec_numbers
from seqchat.tasks.registry import get_task
from seqchat.tasks.templates import answer_templates, fill_values, render, target_text

pytestmark = pytest.mark.integration
GENE_TASKS = ("gene_description", "gene_ec")


@pytest.fixture(scope="module")
def records():
    return G.gene_records(str(data_dir()))


@pytest.fixture(scope="module")
def split():
    return G.gene_split(str(data_dir()))


def test_records_are_full_length_spliced_coding_dna(records):
    by_uid = {r.uid: r for r in records}
    assert Counter(r.genome for r in records) == {"yeast": 5983, "ecoli": 4298, "chlamydia": 893}
    # thrA: forward strand, two EC numbers, 820 codons + stop
    thra = by_uid["ecoli:b0002"]
    assert (
        thra.gene == "thrA"
        and thra.ec == ("1.1.1.3", "2.7.2.4")
        and len(thra.dna) == 2463
        and thra.strand == 1
    )
    # EFB1 (YAL003W) has an intron: the record holds the spliced CDS; PAU8 (YAL068C) is on the minus strand
    efb1, pau8 = by_uid["yeast:YAL003W"], by_uid["yeast:YAL068C"]
    assert efb1.exons == 2 and efb1.end - efb1.start > len(efb1.dna)
    assert pau8.strand == -1 and pau8.dna.startswith("ATG")
    for r in (thra, efb1, pau8):
        assert (
            str(Seq(r.dna).translate(table=G.GENOMES[r.genome].transl_table)).rstrip("*")[1:] == r.protein[1:]
        )
    # the translation of the extracted DNA agrees with the annotated protein for all but a handful
    # (selenocysteine and ribosomal-slippage genes)
    bad = [
        r.uid
        for r in records
        if str(Seq(r.dna).translate(table=G.GENOMES[r.genome].transl_table)).rstrip("*")[1:] != r.protein[1:]
    ]
    assert len(bad) <= 60, bad[:10]
    assert sum(r.exons > 1 for r in records if r.genome == "yeast") > 250
    assert max(len(r.dna) for r in records) == 14733  # never truncated


def test_uninformative_descriptions_dropped_and_names_stripped(records):
    by_uid = {r.uid: r for r in records}
    assert by_uid["yeast:YAL038W"].enzyme == "pyruvate kinase"  # product 'pyruvate kinase CDC19'
    assert all(
        r.description == "" for r in records if r.genome != "yeast" and r.product == "hypothetical protein"
    )
    assert by_uid["ecoli:b0003"].description == "homoserine kinase"


def test_no_cluster_straddles_splits(split, records):
    sides = defaultdict(set)
    for r in records:
        sides[split.cluster[r.uid]].add(split.split[r.uid])
    assert all(len(s) == 1 for s in sides.values())
    counts = Counter(split.split.values())
    assert counts["test"] > 0.1 * len(records) and counts["valid"] > 0.03 * len(records)


def _kmers(protein: str, k: int = 5) -> set[str]:
    return {protein[i : i + k] for i in range(len(protein) - k + 1) if len(set(protein[i : i + k])) > 2}


def test_clustering_matches_its_definition_on_kinases(split, records):
    """Brute force over every pair of kinase genes (many paralogs): linked pairs must share a cluster."""
    kin = [r for r in records if "kinase" in r.product.lower()]
    sets = [_kmers(r.protein) for r in kin]
    s = G.ClusterSettings()
    linked = 0
    for (a, sa), (b, sb) in itertools.combinations(zip(kin, sets, strict=True), 2):
        shared = len(sa & sb)
        if shared >= s.min_shared and shared >= s.min_fraction * min(len(sa), len(sb)):
            linked += 1
            assert split.cluster[a.uid] == split.cluster[b.uid], (a.uid, b.uid)
    assert linked > 100


def test_kmer_clusters_link_mutated_copies_only():
    base = "MSDNLKQLASEVAHTLGIPRDEVIKALYESGVTVNGQKLDGKEAARILADAYGKDVTIKEEHH"
    copy = base[:20] + "W" + base[21:40] + "C" + base[41:]  # two substitutions
    unrelated = "MKKLLPTAAAGLLLLAAQPAMAMDIGINSDPNSSSVDKLAAALEHHHHHHWSHPQFEKGGSG"
    lowc = "Q" * 40 + "N" * 40
    labels = G.kmer_clusters([base, unrelated, copy, lowc, lowc])
    assert labels[0] == labels[2] and len({labels[0], labels[1], labels[3]}) == 3
    assert labels[3] != labels[4]  # low-complexity 5-mers never link


def test_novel_ecs_never_in_training(split, records):
    train_ecs = split.train_ecs(records)
    assert len(split.held_out_ecs) > 50 and not split.held_out_ecs & train_ecs
    sp = task_splits("gene_ec")
    assert all(e in train_ecs for ex in sp.train for e in ex.target)
    tags = Counter(ex.meta["test_set"] for ex in sp.test)
    assert tags["novel_ec"] > 100 and tags["seen_ec"] > 100
    for ex in sp.test:
        unseen = [e for e in ex.target if e not in train_ecs]
        assert (ex.meta["test_set"] == "novel_ec") == bool(unseen)
    held_genes = {r.uid for r in records if set(r.ec) & split.held_out_ecs}
    assert held_genes and all(split.split[u] == "test" for u in held_genes)


def test_both_gene_tasks_share_one_split():
    side = {}
    for name in GENE_TASKS:
        for part in ("train", "valid", "test"):
            for ex in task_splits(name).get(part):
                assert side.setdefault(ex.source_id, part) == part, ex.source_id


@pytest.mark.parametrize("name", GENE_TASKS)
def test_built_records_name_no_gene_and_carry_whole_dna(name, records):
    by_dna = defaultdict(list)
    for r in records:
        by_dna[r.dna].append(r)
    checked = 0
    for part in ("train", "valid", "test"):
        for rec in task_records(get_task(name), part, BuildConfig(seed=0)):
            questions = " ".join(m["content"] for m in rec.messages if m["role"] == "user")
            for seq_name, seq in rec.sequences.items():
                genes = by_dna[seq["residues"]]
                assert genes, "a record's DNA is not a whole gene"
                # the locus is never the sequence's name (uids hold a colon, which names may not)
                assert ":" not in seq_name and all(seq_name not in g.names for g in genes)
                for gene_name in {n for g in genes for n in g.names}:
                    assert not re.search(rf"(?<![\w-]){re.escape(gene_name)}(?![\w-])", questions), (
                        gene_name,
                        questions,
                    )
                checked += 1
    assert checked > 2000


def test_ec_answers_parse_back_to_the_target():
    task = get_task("gene_ec")
    for ex in task_splits("gene_ec").test:
        for tmpl in answer_templates(task, ex.target):
            text = render(tmpl, {**fill_values(task, ex.meta), "label": target_text(task, ex.target)})
            assert parse_ec_numbers(text) == tuple(normalize_ec(e) for e in ex.target), text


def test_gene_length_summary():
    s = G.length_summary([100, 600, 6000])
    assert s["n"] == 3 and s["median"] == 600 and s["over_512"] == round(2 / 3, 3) and s["max"] == 6000


def test_protein_corpus_leaves_out_test_genes(split, records):
    from seqchat.data import corpora

    held = G.proteins_of_test_genes(str(data_dir()))
    assert len(held) > 1000 and held <= corpora.protein_test_set()
    # identical proteins always share a cluster, so no training gene has a test gene's protein
    assert not held & {r.protein for r in records if split.split[r.uid] == "train"}
