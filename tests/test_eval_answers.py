"""Per-task answer specs: every answer phrasing a model is taught (or scored on) reads back as its target."""

from __future__ import annotations

import random

import pytest

from seqchat.data import templates as T
from seqchat.data.tasks import TASKS
from seqchat.evaluation.answers import answer_spec, class_order, parse_prediction

CLASS_TASKS = [n for n, t in TASKS.items() if t.task_type in ("binary", "multiclass") and t.group != "user"]
TEXT_TASK = next(n for n, t in TASKS.items() if t.task_type == "free_text")
REGRESSION_TASKS = [n for n, t in TASKS.items() if t.task_type == "regression" and t.group != "user"]


@pytest.mark.parametrize("name", CLASS_TASKS)
def test_every_training_answer_and_confidence_phrasing_parses_to_its_class(name):
    task = TASKS[name]
    for key in class_order(task):
        values = {**T.fill_values(task), "label": T.target_text(task, key)}
        phrasings = [T.render(t, values) for t in T.answer_templates(task, key)]
        if task.task_type == "binary":
            phrasings += T.confidence_candidates(name)[key]
        phrasings.append(T.canonical_answers(name)[key])
        for a in phrasings:
            for variant in (a, a.rstrip("."), a.upper(), a.lower()):
                assert parse_prediction(name, variant) == key, (name, variant)


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
