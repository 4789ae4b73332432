"""Per-task answer specs: every answer phrasing a model is taught (or scored on) reads back as its target."""

from __future__ import annotations

import random

import pytest

from seqchat.tasks import templates as T
from seqchat.tasks.answers import PRESENCE_SUBJECTS, answer_spec, class_order, parse_prediction
from seqchat.tasks.registry import TASKS

CLASS_TASKS = [n for n, t in TASKS.items() if t.task_type in ("binary", "multiclass") and t.group != "user"]
TEXT_TASK = next(n for n, t in TASKS.items() if t.task_type == "free_text")
REGRESSION_TASKS = [n for n, t in TASKS.items() if t.task_type == "regression" and t.group != "user"]


def _training_phrasings(name):
    """(phrasing, class) for every training answer, confidence phrasing and canonical answer of a class task."""
    task = TASKS[name]
    out = []
    for key in class_order(task):
        values = {**T.fill_values(task), "label": T.target_text(task, key)}
        phrasings = [T.render(t, values) for t in T.answer_templates(task, key)]
        if task.task_type == "binary":
            phrasings += T.confidence_candidates(name)[key]
        phrasings.append(T.canonical_answers(name)[key])
        out += [(a, key) for a in phrasings]
    return out


@pytest.mark.parametrize("name", CLASS_TASKS)
def test_every_training_answer_and_confidence_phrasing_parses_to_its_class(name):
    for a, key in _training_phrasings(name):
        for variant in (a, a.rstrip("."), a.upper(), a.lower()):
            assert parse_prediction(name, variant) == key, (name, variant)


# plausible free answers a model (or a person) gives, with the class each must parse to (None: no answer)
FREE_ANSWERS = [
    ("yeast_h3", "H3 is present.", 1),
    ("yeast_h3", "H3 is absent.", 0),
    ("yeast_h3", "No H3.", 0),
    ("yeast_h3", "There is no H3 here.", 0),
    ("yeast_h3", "Yes", 1),
    ("yeast_h3", "No", 0),
    ("yeast_h3", "Yes, H3 is present.", 1),
    ("yeast_h3", "No. H3 is not present in this region.", 0),
    ("yeast_h3", "H3 is not enriched here.", 0),
    ("yeast_h3k36me3", "H3K36me3 is present in this yeast DNA.", 1),
    ("yeast_h3k36me3", "H3K36me3 is absent in this yeast DNA.", 0),
    ("yeast_h3k36me3", "There is no H3K36me3 on this fragment.", 0),
    ("yeast_h3k36me3", "H3K36me3 present.", 1),
    ("yeast_h3k4me3", "This region has H3K4me3.", 1),
    ("yeast_h3k4me3", "H3K4me3 was detected at this locus.", 1),
    ("yeast_h3k4me3", "The locus lacks H3K4me3.", 0),
    ("yeast_h4ac", "H4ac: absent", 0),
    ("yeast_h4ac", "H4ac: present", 1),
    ("promoter_300_all", "A promoter is present.", 1),
    ("promoter_300_all", "Promoter present.", 1),
    ("promoter_300_all", "No promoter.", 0),
    ("promoter_300_all", "There is no promoter in this sequence.", 0),
    ("promoter_300_all", "The promoter is absent.", 0),
    ("promoter_300_all", "This is not a promoter region.", 0),
    ("core_promoter_tata", "Yes, this contains a core promoter.", 1),
    ("core_promoter_tata", "No, there is no core promoter here.", 0),
    ("enhancers", "An enhancer is present.", 1),
    ("enhancers", "No enhancer.", 0),
    ("enhancers", "Enhancer absent.", 0),
    ("polya_arabidopsis_thaliana", "A polyadenylation site is present.", 1),
    ("polya_arabidopsis_thaliana", "There is no polyadenylation site.", 0),
    ("plant_splice_donor", "A splice donor site is present.", 1),
    ("plant_splice_donor", "No splice donor site here.", 0),
    ("tf_human_0", "Yes, the transcription factor binds here.", 1),
    ("tf_human_0", "No binding.", 0),
    ("tf_human_0", "TF binding is present.", 1),
    ("tf_human_0", "There is no TF binding site.", 0),
    ("protein_solubility", "Soluble.", 1),
    ("protein_solubility", "No, it is insoluble.", 0),
    ("lncrna_m_esculenta", "It is a long non-coding RNA.", 1),
    ("lncrna_m_esculenta", "This is an mRNA.", 0),
    ("splice_sites_human", "Acceptor.", "acceptor"),
    ("splice_sites_human", "This is a donor site.", "donor"),
    ("splice_sites_human", "Neither.", "neither"),
    ("enhancer_types", "A weak enhancer.", "weak"),
    ("enhancer_types", "This is a strong enhancer.", "strong"),
    ("ncrna_family", "tRNA", "tRNA"),
    ("ncrna_family", "It is a microRNA.", "miRNA"),
    ("ncrna_family", "This looks like a riboswitch.", "riboswitch"),
    ("ncrna_family", "An H/ACA box snoRNA.", "HACA-box"),
    ("ncrna_family", "A group II intron.", "Intron_gpII"),
    ("rrna16s_phylum", "Firmicutes.", "Firmicutes"),
    ("rrna16s_phylum", "The phylum is Bacteroidetes.", "Bacteroidetes"),
    ("yeast_h3", "I cannot tell.", None),
    ("yeast_h3", "H3?", None),
    ("splice_sites_human", "It could be a donor or an acceptor.", None),
]


@pytest.mark.parametrize(("name", "answer", "expected"), FREE_ANSWERS)
def test_free_answers(name, answer, expected):
    assert parse_prediction(name, answer) == expected


def test_parse_rate_over_training_phrasings_and_free_answers():
    taught = [(n, a, k) for n in CLASS_TASKS for a, k in _training_phrasings(n)]
    rate = sum(parse_prediction(n, a) == k for n, a, k in taught) / len(taught)
    free = sum(parse_prediction(n, a) == k for n, a, k in FREE_ANSWERS) / len(FREE_ANSWERS)
    assert len(taught) > 1000 and len(FREE_ANSWERS) >= 30
    assert rate == 1.0 and free == 1.0, (rate, free)


PRESENCE_TASKS = [n for n in CLASS_TASKS if TASKS[n].templates in PRESENCE_SUBJECTS]


@pytest.mark.parametrize("name", PRESENCE_TASKS)
def test_plain_assertions_and_denials_of_every_presence_subject(name):
    task = TASKS[name]
    for subject in PRESENCE_SUBJECTS[task.templates]:
        x = T.render(subject, T.fill_values(task))
        for answer, expected in ((f"{x} is present.", 1), (f"{x} is present in this DNA.", 1),
                                 (f"Yes, {x} is present.", 1),
                                 (f"{x} is absent.", 0), (f"No {x}.", 0), (f"There is no {x} here.", 0),
                                 (f"No, {x} is not present.", 0)):  # fmt: skip
            assert parse_prediction(name, answer) == expected, (name, answer)


@pytest.mark.parametrize("name", REGRESSION_TASKS)
def test_every_regression_answer_parses_to_its_value(name):
    task = TASKS[name]
    rng = random.Random(0)
    lo, hi = task.value_range
    for tmpl in T.answer_templates(task, 0.0):
        value = round(rng.uniform(lo, hi), task.decimals)
        meta = {"cell_line": "HEK293T", "species": "maize"}
        text = T.render(tmpl, {**T.fill_values(task, meta), "value": task.format_value(value)})
        assert parse_prediction(name, text) == pytest.approx(value), text


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("Yes.", 1),
        ("no", 0),
        ("NO, IT IS NOT A TATA-BOX PROMOTER.", 0),
        ("It is not a TATA-box promoter.", 0),  # negation
        ("A TATA-box promoter is absent here.", 0),  # negation after the label
        ("I do not think this is a TATA-box promoter.", 0),
        ("Yes - it is a TATA-box promoter, with a TATA box at -30 bp.", 1),  # extra numbers
        ("I cannot tell.", None),
        ("", None),
    ],
)
def test_binary_tricky_answers(answer, expected):
    assert parse_prediction("promoter_300_tata", answer) == expected


@pytest.mark.parametrize(
    "task, answer, expected",
    [
        ("splice_sites_human", "This sequence is neither a donor nor an acceptor site.", "neither"),
        ("splice_sites_human", "donor", "donor"),  # zero-shot answers name the short key
        ("splice_sites_human", "It is a splice acceptor site, not a donor.", "acceptor"),
        ("ncrna_family", "5S_rRNA", "5S_rRNA"),
        ("ncrna_family", "This RNA is a 5.8S ribosomal RNA.", "5_8S_rRNA"),
        ("enhancer_types", "Strong.", "strong"),
        ("protein_gb1", "Fitness: 1.5 (wild type = 1).", 1.5),  # the first number is the answer
        ("protein_meltome", "Its melting temperature is 54.3 °C.", 54.3),  # units
        ("crispr_on_target", "In HEK293T cells the efficacy is 0.42.", 0.42),  # cell-line names hold no value
        ("protein_ec", "EC 2.7.11.12 and EC:3.1", ("2.7.11.12", "3.1.-.-")),
        ("protein_ec", "an enzyme", None),
        (TEXT_TASK, "  Protein kinase.  ", "Protein kinase."),
        (TEXT_TASK, "   ", None),
    ],
)
def test_other_task_types(task, answer, expected):
    got = parse_prediction(task, answer)
    assert got == (pytest.approx(expected) if isinstance(expected, float) else expected)


def test_specs_are_built_once_and_name_every_class():
    spec = answer_spec("enhancer_types")
    assert spec is answer_spec("enhancer_types")
    assert set(spec.labels) == set(TASKS["enhancer_types"].labels.values())
