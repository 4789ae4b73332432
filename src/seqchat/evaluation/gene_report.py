"""The gene-function report: homology-transfer baselines, embedding retrieval and the page that shows them.

`seqchat gene-function report --out docs/gene_function.md` regenerates the whole page: the gene
data (counts, lengths, clustering and its MMseqs2 check), nearest-neighbour transfer baselines for
gene_description, gene_ec and protein_ec, k-mer (and, with --encoder, encoder) retrieval scores, the
GeneChat and BioTalk anchors, and three example predictions next to the truth. The command is in
`seqchat.cli.gene`.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seqchat.data.build import task_splits
from seqchat.data.paths import data_dir
from seqchat.data.records import stable_fraction
from seqchat.data.sources.genes import GENOMES, gene_records, gene_split, length_summary, split_counts
from seqchat.evaluation.homology import mmseqs_available, mmseqs_search, run_transfer
from seqchat.evaluation.metrics import meteor_uses_synonyms
from seqchat.evaluation.retrieval import RETRIEVAL_SETS, EncoderModalityError, run_retrieval
from seqchat.modeling.tokenization import window_starts

# published numbers set beside ours (different data: NCBI gene summaries and UniProt enzymes)
ANCHORS: dict[str, dict[str, Any]] = {
    "GeneChat": {
        "source": "GeneChat (Dhanasekar et al. 2025), Table 1: NCBI gene summaries from the DNA",
        "bleu1": 0.194, "bleu4": 0.082, "meteor": 0.273,
    },
    "BioTalk": {
        "source": "BioTalk, Tables 2-3: Finetuned-LOLBERT kNN hierarchical precision at k=1, by benchmark",
        "hp@1": (0.33, 0.66),
    },
}  # fmt: skip
TEXT_METRICS = ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l")
EC_METRICS = ("ec_exact_match", "ec_hprecision", "ec_hrecall", "ec_hf1")
RETRIEVAL_COLUMNS = ("hp@1", "hp@3", "hp@5", "silhouette_class", "silhouette_ec")


# ---------------------------------------------------------------------------------------------- report


def data_version(root: Path) -> str:
    """Short fingerprint of the shared data: sha256 of DATA.md and of the genome files' names and sizes."""
    h = hashlib.sha256((root / "DATA.md").read_bytes())
    for p in sorted((root / "genomes").rglob("*")):
        if p.is_file():
            h.update(f"{p.relative_to(root)}:{p.stat().st_size}".encode())
    return h.hexdigest()[:12]


def split_check(records: list, split: Any) -> dict[str, Any]:
    """MMseqs2 hits of test proteins against training and valid proteins, by identity and coverage."""
    test = [r for r in records if split.split[r.uid] == "test"]
    rest = [r for r in records if split.split[r.uid] != "test"]
    t0 = time.time()
    rows = mmseqs_search([r.protein for r in test], [r.protein for r in rest],
                         ("query", "target", "fident", "qcov", "tcov"))  # fmt: skip
    pairs: dict[str, set] = {"id>=0.9,cov>=0.8": set(), "id>=0.7,cov>=0.8": set(), "id>=0.5,cov>=0.8": set(),
                             "id>=0.3,cov>=0.5": set()}  # fmt: skip
    for q, _target, fid, qc, tc in rows:
        f, cov = float(fid), min(float(qc), float(tc))
        for key in pairs:
            lo_id, lo_cov = (float(x.split(">=")[1]) for x in key.split(","))
            if f >= lo_id and cov >= lo_cov:
                pairs[key].add(int(q))
    return {"test_genes": len(test), "seconds": round(time.time() - t0, 1),
            "test_genes_with_a_hit": {k: len(v) for k, v in pairs.items()}}  # fmt: skip


def gene_data_summary(root: Path) -> dict[str, Any]:
    """Counts per genome and split, task counts, gene lengths and the clustering summary."""
    records = list(gene_records(str(root)))
    split = gene_split(str(root))
    sizes = Counter(split.cluster.values())
    tasks = {}
    for name in ("gene_description", "gene_ec", "protein_ec"):
        sp = task_splits(name)
        tasks[name] = {s: len(sp.get(s)) for s in ("train", "valid", "test")}
        tags = Counter(ex.meta.get("test_set", "") for ex in sp.test)
        tasks[name].update({k: v for k, v in tags.items() if k})
    if "protein_ec" in tasks:
        sp = task_splits("protein_ec")
        train_ecs = {e for ex in sp.train for e in ex.target}
        tasks["protein_ec"]["novel_ec"] = sum(any(e not in train_ecs for e in ex.target) for ex in sp.test)
    lengths = [len(r.dna) for r in records]
    return {
        "genomes": {
            g: {"species": GENOMES[g].species, **dict(c)} for g, c in split_counts(str(root)).items()
        },
        "tasks": tasks,
        "length_nt": length_summary(lengths),
        "windows_512": length_summary([len(window_starts(n, 512, 10)) for n in lengths]),
        "by_genome_length": {
            g: length_summary([len(r.dna) for r in records if r.genome == g]) for g in GENOMES
        },
        "clusters": {
            "n": len(sizes),
            "largest": max(sizes.values()),
            "singletons": sum(v == 1 for v in sizes.values()),
            "seconds": split.seconds,
            "held_out_ecs": len(split.held_out_ecs),
        },  # fmt: skip
        "records": records,
        "split": split,
    }


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return out


def build_report(
    encoders: dict[str, str],
    device: str = "cpu",
    mmseqs: bool = True,
    log: Any = None,
    encoder_sets: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Every number of the page: data summary, transfer baselines and retrieval scores."""
    say = log or (lambda *_: None)
    t0 = time.time()
    root = data_dir()
    use_mmseqs = mmseqs and mmseqs_available()
    data = gene_data_summary(root)
    say(f"data summary {time.time() - t0:.0f}s")
    out: dict[str, Any] = {
        "data_version": data_version(root),
        "meteor_wordnet": meteor_uses_synonyms(),
        "mmseqs": use_mmseqs,
        "data": {k: v for k, v in data.items() if k not in ("records", "split")},
    }
    if use_mmseqs:
        out["split_check"] = split_check(data["records"], data["split"])
        say(f"split check {time.time() - t0:.0f}s")
    methods = ["protein_kmer", "dna_kmer"] + (["mmseqs"] if use_mmseqs else [])
    out["transfer"] = {}
    for task in ("gene_description", "gene_ec", "protein_ec"):
        task_methods = [m for m in methods if m != "dna_kmer"] if task == "protein_ec" else methods
        out["transfer"][task] = run_transfer(task, task_methods)
        say(f"transfer {task} {time.time() - t0:.0f}s")
    out["retrieval"] = {}
    for set_name in RETRIEVAL_SETS:
        use = encoders if encoder_sets is None or set_name in encoder_sets else {}
        for label, path in {"k-mer frequencies": "kmer", **use}.items():
            try:
                out["retrieval"].setdefault(set_name, {})[label] = run_retrieval(set_name, path, device)
            except EncoderModalityError:
                continue  # each encoder is scored on the sets of its own modality
            say(f"retrieval {set_name} {label} {time.time() - t0:.0f}s")
    out["seconds"] = round(time.time() - t0, 1)
    return out


def _examples(res: dict[str, Any], n: int = 3) -> list[str]:
    test = task_splits("gene_description").test
    preds = res["transfer"]["gene_description"]["predictions"]
    method = "mmseqs" if "mmseqs" in preds else "protein_kmer"
    # one example per genome, the first by a fixed hash order, so the page is stable
    order = sorted(
        range(len(test)), key=lambda i: stable_fraction(test[i].source_id, "gene_function:examples")
    )
    picked, seen = [], set()
    for i in order:
        if test[i].meta["genome"] not in seen:
            picked.append(i)
            seen.add(test[i].meta["genome"])
        if len(picked) == n:
            break
    lines = [f"Nearest-neighbour transfer ({method}) on three test genes, one per genome:", ""]
    for i in picked:
        ex = test[i]
        lines += [
            f"- **{ex.meta['species']} {ex.meta['gene'] or ex.source_id}** ({len(ex.residues)} nt)",
            f"  - truth: {ex.target}",
            f"  - prediction: {preds[method][i]}",
        ]
    return lines


def render_report(res: dict[str, Any], command: str) -> str:
    """The markdown page."""
    d = res["data"]
    L = [
        "# Gene function: descriptions (GeneChat) and enzyme function (BioTalk)",
        "",
        f"Generated by `{command}` in {res['seconds']:.0f} s. Data version {res['data_version']} (sha256 of "
        "shared/data DATA.md and the genome files' names and sizes); the split is hash-based and needs no seed. "
        f"METEOR with WordNet synonyms: {'yes' if res['meteor_wordnet'] else 'no (exact and stem matches only)'}. "
        f"MMseqs2: {'yes' if res['mmseqs'] else 'not installed (its rows are missing)'}.",
        "",
        "## Data",
        "",
        "One record per protein-coding gene of the annotated genomes (`seqchat.data.sources.genes`): the "
        "full coding DNA (introns spliced, minus strand reverse-complemented, never truncated), its translation, "
        "gene name, "
        "product, SGD description, GO molecular-function terms and EC numbers. Pseudogenes and genes cut by the "
        "origin of a circular contig are left out.",
        "",
    ]
    rows = [
        [g, v["species"], v.get("train", 0), v.get("valid", 0), v.get("test", 0)]
        for g, v in d["genomes"].items()
    ]
    L += _table(["genome", "species", "train genes", "valid", "test"], rows) + [""]
    rows = [
        [t, v["train"], v["valid"], v["test"], v.get("seen_ec", "-"), v.get("novel_ec", "-")]
        for t, v in d["tasks"].items()
    ]
    L += _table(["task", "train", "valid", "test", "test: seen EC", "test: novel EC (Test-Set-II)"], rows) + [
        ""
    ]
    c = d["clusters"]
    L += [
        f"Split: proteins linked when they share >=5 non-low-complexity 5-mers making up >=3% of the shorter "
        f"protein's 5-mers; single-linkage clusters ({c['n']} clusters, {c['singletons']} singletons, the largest "
        f"{c['largest']} genes; {c['seconds']:.1f} s for "
        f"{sum(sum(v for k, v in g.items() if k != 'species') for g in d['genomes'].values())} "
        f"proteins) go whole to test (10%), valid (5%) or train by a hash; first, {c['held_out_ecs']} hash-chosen "
        "complete EC numbers (10%) are held out: every cluster holding one goes to test. A test gene is "
        "'novel EC' when one of its EC numbers occurs in no training gene. protein_ec keeps CLEAN's split "
        "(split10 train, New-392 test); its 'novel EC' count is the same definition.",
        "",
    ]
    if "split_check" in res:
        sc = res["split_check"]
        hits = ", ".join(f"{k}: {v}" for k, v in sc["test_genes_with_a_hit"].items())
        L += [f"MMseqs2 check (test proteins searched against train+valid proteins, {sc['seconds']:.0f} s): test "
              f"genes (of {sc['test_genes']}) with a hit at {hits}.", ""]  # fmt: skip
    ln, w = d["length_nt"], d["windows_512"]
    L += [
        f"Gene lengths (nt): median {ln['median']:.0f}, quartiles {ln['q25']:.0f}-{ln['q75']:.0f}, 95th percentile "
        f"{ln['p95']:.0f}, max {ln['max']}; {100 * ln['over_512']:.0f}% are longer than one 512-nt encoder window and "
        f"{100 * ln['over_5000']:.1f}% longer than 5 kb. Windows of 512 nt (overlap 10) per gene: median "
        f"{w['median']:.0f}, 95th percentile {w['p95']:.0f}, max {w['max']}.",
        "",
    ]
    rows = [
        [g, v["n"], round(v["median"]), round(v["p95"]), v["max"]] for g, v in d["by_genome_length"].items()
    ]
    L += _table(["genome", "genes", "median nt", "95th pct nt", "max nt"], rows) + [""]

    L += ["## Nearest-neighbour transfer (homology baseline)", "",
          "Copy the description / EC numbers of the most similar training gene: `protein_kmer` (cosine of protein "
          "3-mer counts), `dna_kmer` (cosine of coding-DNA 6-mer counts), `mmseqs` (best MMseqs2 bitscore hit, "
          "falling back to protein_kmer without one); `majority` answers the most frequent training answer. "
          "Description neighbours come from the same genome. BLEU is the mean sentence BLEU (NLTK smoothing 1).",
          ""]  # fmt: skip
    tr = res["transfer"]["gene_description"]
    rows = []
    for method, by_subset in tr["results"].items():
        for subset, m in by_subset.items():
            rows.append([method, subset, m["n"], *(m[k] for k in TEXT_METRICS)])
    g = ANCHORS["GeneChat"]
    rows.append(["GeneChat (anchor)", "NCBI genes", "-", g["bleu1"], "-", "-", g["bleu4"], g["meteor"], "-"])
    L += ["### gene_description (test split)", ""]
    L += _table(
        ["method", "subset", "n", "BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L"], rows
    ) + [""]
    for task in ("gene_ec", "protein_ec"):
        tr = res["transfer"][task]
        rows = [[method, subset, m["n"], *(m[k] for k in EC_METRICS)]
                for method, by_subset in tr["results"].items() for subset, m in by_subset.items()]  # fmt: skip
        L += [f"### {task} (test split)", ""]
        L += _table(["method", "subset", "n", "exact match", "hP", "hR", "hF"], rows) + [""]

    L += ["## Embedding retrieval by EC number (BioTalk Tables 2-3)", "",
          "Each test sequence retrieves its k nearest training sequences (cosine); hP@k scores the best of them by "
          "shared EC levels. Silhouette (euclidean) over test and training embeddings together, by EC class (first "
          "level) and by full EC number (singletons score 0). k-mer frequencies: DNA 3-5-mers, protein 1-2-mers. "
          "Encoders: mean of the last hidden states over all content tokens of all windows.", ""]  # fmt: skip
    L += [f"Note: {n}" for n in res.get("notes", [])] + ([""] if res.get("notes") else [])
    rows = []
    for set_name, by_emb in res["retrieval"].items():
        for label, scores in by_emb.items():
            for subset, s in scores.items():
                rows.append(
                    [set_name, label, subset, s["n_queries"], *(s.get(k, "-") for k in RETRIEVAL_COLUMNS)]
                )
    lo, hi = ANCHORS["BioTalk"]["hp@1"]
    rows.append(
        [
            "BioTalk (anchor)",
            "Finetuned-LOLBERT",
            "by benchmark",
            "-",
            f"{lo:.2f}-{hi:.2f}",
            "-",
            "-",
            "-",
            "-",
        ]
    )
    L += _table(
        ["set", "embedder", "queries", "n", "hP@1", "hP@3", "hP@5", "silhouette (class)", "silhouette (EC)"],
        rows,
    )
    L += [""]
    L += ["## Examples", ""] + _examples(res) + [""]
    L += ["Anchors: " + "; ".join(f"{k}: {v['source']}" for k, v in ANCHORS.items()) + ". Their data differ from "
          "ours (NCBI human/mouse gene summaries; UniProt enzymes), so they are a scale, not a comparison.", ""]
    return "\n".join(L)
