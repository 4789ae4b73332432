"""Published numbers our benchmark can be set beside: only where our test data match the source's.

Task anchors compare one task's primary metric; group anchors compare the mean over a group of our
tasks whose test sets together form the source's test set (Biology-Instructions reports GUE task
families as one number: the test counts add up exactly, e.g. the ten yeast EMP test files hold the
28,741 sequences of its EMP task).
"""

from __future__ import annotations

from dataclasses import dataclass

CHATNT_T2 = "ChatNT Suppl. Table 2"
BI_T4 = "Biology-Instructions Table 4 (literature SOTA)"
BI_T6 = "Biology-Instructions Table 6 (literature SOTA)"


@dataclass(frozen=True)
class Anchor:
    """A published value of a metric on data that match ours."""

    value: float
    metric: str
    model: str
    source: str
    match: str  # how our data relate to the source's


TASK_ANCHORS: dict[str, Anchor] = {
    "enhancers": Anchor(0.55, "mcc", "Nucleotide Transformer", CHATNT_T2, "same 400-sequence test set (NT benchmark)"),
    "enhancer_types": Anchor(
        0.41, "mcc", "Nucleotide Transformer", CHATNT_T2, "same 400-sequence test set (NT benchmark)"
    ),
    "promoter_strength_leaf": Anchor(
        0.86, "pearson", "AgroNT", CHATNT_T2,
        "our test is a 1,000-sequence subsample of the source's 7,154; train <=8,000 of 58,179",
    ),
    "promoter_strength_protoplast": Anchor(
        0.84, "pearson", "AgroNT", CHATNT_T2,
        "our test is a 1,000-sequence subsample of the source's 7,595; train <=8,000 of 61,051",
    ),
    "protein_solubility": Anchor(
        0.77, "accuracy", "DeepSol", BI_T6, "same DeepSol test set (2,001); we train on DeepSol's validation set only"
    ),
}


@dataclass(frozen=True)
class GroupAnchor:
    """A published value for a family of our tasks, compared with the mean of their per-task metric."""

    name: str
    tasks: tuple[str, ...]
    anchor: Anchor


_EMP = ("h3", "h3k14ac", "h3k36me3", "h3k4me1", "h3k4me2", "h3k4me3", "h3k79me3", "h3k9ac", "h4", "h4ac")
GROUP_ANCHORS: tuple[GroupAnchor, ...] = (
    GroupAnchor("EMP (yeast epigenetic marks)", tuple(f"yeast_{m}" for m in _EMP),
                Anchor(0.5883, "mcc", "DNABERT-2", BI_T4,
                       "the 10 GUE EMP test sets (28,741 sequences); we train on GUE dev files")),
    GroupAnchor("TF-H (human TF binding)", tuple(f"tf_human_{i}" for i in range(5)),
                Anchor(0.6684, "mcc", "DNABERT-2", BI_T4, "the 5 GUE human TF test sets (5,000 sequences)")),
    GroupAnchor("TF-M (mouse TF binding)", tuple(f"tf_mouse_{i}" for i in range(5)),
                Anchor(0.7121, "mcc", "DNABERT-2", BI_T4, "the 5 GUE mouse TF test sets (10,005 sequences)")),
    GroupAnchor("PD300 (promoters, 300 bp)", ("promoter_300_all", "promoter_300_notata", "promoter_300_tata"),
                Anchor(0.8381, "mcc", "DNABERT-2", BI_T4, "the 3 GUE prom_300 test sets (11,840 sequences)")),
    GroupAnchor("CPD (core promoters, 70 bp)", ("core_promoter_all", "core_promoter_notata", "core_promoter_tata"),
                Anchor(0.7107, "mcc", "DNABERT-2", BI_T4, "the 3 GUE prom_core test sets (11,840 sequences)")),
)  # fmt: skip

# ChatNT's headline: average MCC over the 18 Nucleotide Transformer benchmark tasks, ChatNT vs the
# fine-tuned NT v2 500M specialist it builds on (paper text and Fig. 3a,b)
CHATNT_RATIO = {
    "multitask": 0.77, "specialist": 0.69, "source": "ChatNT, Results (18 NT benchmark tasks, average MCC)"
}
