"""Pretraining corpora for the sequence encoders, never containing a test-split sequence of any task.

DNA: fixed-size windows from the genomes in the shared data, on both strands, cut at runs of N. A window is
dropped when it contains one of the tiled 32-mers (offsets 0, 32, 64, ...) of any nucleotide test sequence on
either strand, so no window holds 63 or more contiguous bases of a test sequence (nor a whole test sequence of
32 nt or longer; the 23-nt sgRNAs are too short to screen and come from human loci absent from these
genomes). Protein: GenBank CDS translations
plus the training splits of the protein tasks, minus every protein test sequence and the translation of every
test gene of the gene tasks (their input is DNA, but the protein is the same gene). RNA: training splits of the
RNA tasks.
"""

from __future__ import annotations

import gzip
import io
import random
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from seqchat.data.build import task_splits
from seqchat.data.paths import data_dir
from seqchat.data.records import reverse_complement, seq_key
from seqchat.data.sources.genes import proteins_of_test_genes
from seqchat.errors import SeqChatInputError
from seqchat.modeling.sequences import Sequence, iter_fasta_records
from seqchat.tasks.registry import TASKS

KMER = 32
GENOME_FASTA = (
    "genomes/ecoli_k12_mg1655/GCF_000005845.2_ASM584v2_genomic.fna.gz",
    *(f"genomes/bacteria_refs/{n}" for n in (
        "E.Coli_DH1.fasta.gz", "H.Pylori_G27.fasta.gz", "H.Pylori_Puno120.fasta.gz", "H.Pylori_ELS37.fasta.gz",
        "H.Pylori_Gambia94_24.fasta.gz", "H.Pylori_SJM180.fasta.gz", "S.Aureus_COL.fasta.gz",
        "S.Aureus_JKD6008.fasta.gz",
        "S.Aureus_N315.fasta.gz", "S.Aureus_RF122.fasta.gz", "S.Aureus_USA300_FPR3757.fasta.gz",
        "V.Cholerae_H1.fasta.gz", "V.Cholerae_O1_Inaba.fasta.gz", "V.Cholerae_O1_biovar.fasta.gz",
        "V.Cholerae_O395.fasta.gz",
    )),
)
GENOME_GENBANK = (
    *(f"genomes/yeast_s288c/chr{i:02d}.gb.gz" for i in range(1, 17)),
    "genomes/chlamydia_trachomatis/ct.gbk.gz",
)
PROTEIN_TABLES = ("genomes/derived/yeast_proteins.tsv.gz", "genomes/derived/ecoli_proteins.tsv.gz")


def _test_sequences(modalities: tuple[str, ...]) -> list[str]:
    # both sequences of a pair task, each by its own modality, and the extra test sets too
    out = []
    for n, t in TASKS.items():
        sp = task_splits(n)
        for e in [*sp.test, *(x for rows in sp.extra.values() for x in rows)]:
            out += [seq_key(s) for s, m in zip(e.sequences, t.inputs, strict=True) if m in modalities]
    return out


@cache
def dna_test_kmers() -> frozenset[str]:
    """Tiled 32-mers of every nucleotide test sequence, both strands (a window containing one is rejected)."""
    kmers: set[str] = set()
    for s in _test_sequences(("dna", "rna")):
        for strand in (s, reverse_complement(s)):
            kmers.update(strand[i : i + KMER] for i in range(0, len(strand) - KMER + 1, KMER))
    return frozenset(kmers)


@cache
def protein_test_set() -> frozenset[str]:
    """Every protein test sequence of every task, and the proteins of the gene tasks' test genes."""
    return frozenset(_test_sequences(("protein",))) | proteins_of_test_genes(str(data_dir()))


def _stem(rel: str) -> str:
    return re.sub(r"\.(fasta|fna|gb|gbk)\.gz$", "", Path(rel).name)


def _genome_records(root: Path) -> Iterator[tuple[str, str]]:
    for rel in GENOME_FASTA:
        with io.TextIOWrapper(gzip.open(root / rel, "rb"), encoding="utf-8") as fh:
            for header, residues in iter_fasta_records(fh, rel):
                yield f"{_stem(rel)}_{header.split()[0]}", residues.upper()
    from Bio import SeqIO

    for rel in GENOME_GENBANK:
        with io.TextIOWrapper(gzip.open(root / rel, "rb"), encoding="utf-8") as fh:
            for rec in SeqIO.parse(fh, "genbank"):
                yield f"{_stem(rel)}_{rec.id}", str(rec.seq).upper()


def n_free_segments(chrom: str, min_length: int = 1) -> Iterator[tuple[int, str]]:
    """(offset, segment) pieces of a chromosome between runs of N (other non-ACGT letters count as N)."""
    for m in re.finditer(r"[ACGT]+", chrom.upper()):
        if m.end() - m.start() >= min_length:
            yield m.start(), m.group()


def shares_test_kmer(window: str, banned: frozenset[str]) -> bool:
    """Whether a window contains any of the banned 32-mers."""
    return bool(banned) and any(window[i : i + KMER] in banned for i in range(len(window) - KMER + 1))


def dna_windows(
    window: int = 1000,
    stride: int | None = None,
    strands: str = "both",
    min_length: int = 100,
    max_windows: int | None = None,
    exclude_test: bool = True,
) -> Iterator[Sequence]:
    """DNA windows from every genome, cut at N runs; reverse-complement copies when strands='both'."""
    if strands not in ("both", "forward"):
        raise SeqChatInputError(f"strands must be 'both' or 'forward', not '{strands}'")
    stride = stride or window
    banned = dna_test_kmers() if exclude_test else frozenset()
    n = 0
    for rid, chrom in _genome_records(data_dir()):
        for off, seg in n_free_segments(chrom, min_length):
            for start in range(0, max(1, len(seg) - min_length + 1), stride):
                w = seg[start : start + window]
                if len(w) < min_length or shares_test_kmer(w, banned):
                    continue
                name = re.sub(r"[^A-Za-z0-9_]", "_", f"{rid}_{off + start}")
                yield Sequence(name + "_f", w, "dna")
                n += 1
                if strands == "both":
                    yield Sequence(name + "_r", reverse_complement(w), "dna")
                    n += 1
                if max_windows is not None and n >= max_windows:
                    return


def protein_sequences(max_n: int | None = None, exclude_test: bool = True, seed: int = 0) -> Iterator[Sequence]:
    """GenBank CDS translations (yeast, E. coli) and protein training splits, unique, no test sequence."""
    import csv

    banned = protein_test_set() if exclude_test else frozenset()
    seen: set[str] = set()
    out: list[Sequence] = []

    def add(name: str, s: str) -> None:
        s = s.strip().rstrip("*").upper()
        if s and s not in seen and s not in banned and re.fullmatch(r"[A-Z*]+", s):
            seen.add(s)
            out.append(Sequence(re.sub(r"[^A-Za-z0-9_]", "_", name), s, "protein"))

    for rel in PROTEIN_TABLES:
        with io.TextIOWrapper(gzip.open(data_dir() / rel, "rb"), encoding="utf-8") as fh:
            for r in csv.DictReader(fh, delimiter="\t"):
                add(r["locus_tag"], r["protein"])
    for name, t in TASKS.items():
        if t.modality == "protein":
            for split in ("train", "valid"):
                for i, e in enumerate(task_splits(name).get(split)):
                    add(f"{name}_{split}_{i}", e.residues)
    random.Random(seed).shuffle(out)
    yield from out[:max_n] if max_n is not None else out


def rna_sequences(max_n: int | None = None, seed: int = 0) -> Iterator[Sequence]:
    """RNA from the training and valid splits of the RNA tasks (test splits never included)."""
    # pair tasks share single sequences across splits (only pairs are held out), so screen by sequence
    banned = set(_test_sequences(("rna",)))
    seen: set[str] = set()
    out = []
    for name, t in TASKS.items():
        if t.modality == "rna":
            for split in ("train", "valid"):
                for i, e in enumerate(task_splits(name).get(split)):
                    if e.residues not in seen and seq_key(e.residues) not in banned:
                        seen.add(e.residues)
                        out.append(Sequence(f"{name}_{split}_{i}", e.residues, "rna"))
    random.Random(seed).shuffle(out)
    yield from out[:max_n] if max_n is not None else out


CORPORA = {"dna": dna_windows, "protein": protein_sequences, "rna": rna_sequences}


def write_corpus(modality: str, out: str | Path, max_n: int | None = None) -> int:
    """Write one corpus as FASTA; returns the number of sequences."""
    if modality not in CORPORA:
        raise SeqChatInputError(f"no corpus for '{modality}': use one of {', '.join(CORPORA)}")
    it = dna_windows(max_windows=max_n) if modality == "dna" else CORPORA[modality](max_n=max_n)
    n = 0
    with open(out, "w", encoding="utf-8") as fh:
        for s in it:
            fh.write(f">{s.name}\n{s.residues}\n")
            n += 1
    return n
