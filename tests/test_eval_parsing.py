"""Answer parsing: labels with negations, numbers, EC numbers."""

from __future__ import annotations

import pytest

from seqchat.tasks.parsing import (
    UNPARSED,
    ECSpec,
    LabelSpec,
    RegressionSpec,
    find_numbers,
    normalize_ec,
    parse_answer,
    parse_ec_numbers,
    parse_label,
    parse_labels,
    parse_numbers,
)

PROMOTER = LabelSpec(("promoter", "no promoter"), {"promoter": ("promoter region", "core promoter")})
ENHANCER = LabelSpec(("enhancer", "non-enhancer"))
SPLICE = LabelSpec(("donor", "acceptor", "neither"), {"neither": ("no splice site", "not a splice site")})
YES_NO = LabelSpec(("yes", "no"))
NCRNA = LabelSpec(
    ("5S_rRNA", "5_8S_rRNA", "tRNA", "riboswitch", "miRNA", "HACA-box", "leader"),
    {"HACA-box": ("H/ACA box",)},
)


LABEL_CASES = [
    (PROMOTER, "Yes, this sequence contains a promoter.", "promoter"),
    (PROMOTER, "PROMOTER", "promoter"),
    (PROMOTER, "Promoters are present in this fragment.", "promoter"),
    (PROMOTER, "No promoter was detected.", "no promoter"),
    (PROMOTER, "The sequence does not contain a promoter.", "no promoter"),
    (PROMOTER, "The sequence doesn't contain a promoter.", "no promoter"),
    (PROMOTER, "This region lacks promoter elements.", "no promoter"),
    (PROMOTER, "A promoter is absent from this fragment.", "no promoter"),
    (PROMOTER, "No, a promoter region is not present in the given genomic fragment.", "no promoter"),
    (PROMOTER, "There is no clear evidence of a promoter.", "no promoter"),
    (PROMOTER, "Promoter: absent.", "no promoter"),
    (PROMOTER, "Promoter: no", "no promoter"),
    (PROMOTER, "Promoter: yes, strongly.", "promoter"),
    # a negation of another noun does not reach the label in a later clause
    (PROMOTER, "There is no TATA box, but the sequence is a promoter.", "promoter"),
    (PROMOTER, "There is no TATA box and the sequence is a promoter.", "promoter"),
    # double negation
    (PROMOTER, "The sequence does not lack a promoter.", "promoter"),
    (PROMOTER, "I am not sure.", UNPARSED),
    (PROMOTER, "", UNPARSED),
    (ENHANCER, "This is not an enhancer.", "non-enhancer"),
    (ENHANCER, "It isn't an enhancer.", "non-enhancer"),
    (ENHANCER, "It\u2019s a non-enhancer.", "non-enhancer"),
    (ENHANCER, "non enhancer", "non-enhancer"),
    (ENHANCER, "Enhancer.", "enhancer"),
    (ENHANCER, "This is not a non-enhancer.", "enhancer"),
    (ENHANCER, "Looks like an enhancer rather than a non-enhancer.", "enhancer"),
    (SPLICE, "This is a donor site.", "donor"),
    (SPLICE, "Neither donor nor acceptor.", "neither"),
    (SPLICE, "It is not a splice site.", "neither"),
    (SPLICE, "This is not a donor, it is an acceptor.", "acceptor"),
    # ruling out one of three labels leaves two: no answer
    (SPLICE, "It is not a donor.", UNPARSED),
    (SPLICE, "Could be donor or acceptor.", UNPARSED),
    (YES_NO, "Yes", "yes"),
    (YES_NO, "No, it is not.", "no"),
    (YES_NO, "The answer is no.", "no"),
    # a leading verdict wins over a later stray "no"
    (YES_NO, "Yes, there is no doubt.", "yes"),
    (YES_NO, "Maybe yes, maybe no.", UNPARSED),
    # ncRNA family names with digits and underscores
    (NCRNA, "This is a 5.8S rRNA.", "5_8S_rRNA"),
    (NCRNA, "This ncRNA belongs to the 5S_rRNA family.", "5S_rRNA"),
    (NCRNA, "5S rRNA", "5S_rRNA"),
    (NCRNA, "These look like tRNAs.", "tRNA"),
    (NCRNA, "an H/ACA box snoRNA", "HACA-box"),
    (NCRNA, "It is a riboswitch, not a tRNA.", "riboswitch"),
    (NCRNA, "It is a riboswitch and not a tRNA.", "riboswitch"),
]


@pytest.mark.parametrize(("spec", "answer", "expected"), LABEL_CASES)
def test_single_label_answers(spec: LabelSpec, answer: str, expected: str | None) -> None:
    assert parse_label(answer, spec) == expected


def test_multi_label_keeps_asserted_and_drops_negated_labels() -> None:
    spec = LabelSpec(("kinase", "DNA binding", "transport"), multi_label=True)
    assert parse_labels("Kinase activity and DNA-binding, but not transport.", spec) == {
        "kinase",
        "DNA binding",
    }
    assert parse_answer("It has no kinase activity.", spec) == frozenset()
    assert parse_answer("Unknown function.", spec) is UNPARSED


MARK = LabelSpec(("H3 enriched", "no H3 enrichment"), presence={"H3 enriched": ("H3", "H3 signal")})


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("H3 is present.", "H3 enriched"),
        ("H3 is present in this yeast DNA.", "H3 enriched"),
        ("H3: present", "H3 enriched"),
        ("There is an H3 signal.", "H3 enriched"),
        ("This region has H3.", "H3 enriched"),
        ("H3 is absent.", "no H3 enrichment"),
        ("H3 is not enriched here.", "no H3 enrichment"),  # "not" between the subject and the predicate
        ("No H3.", "no H3 enrichment"),
        ("There is no H3 signal here.", "no H3 enrichment"),
        ("The fragment lacks H3.", "no H3 enrichment"),
        # a bare mention asserts nothing: the subject alone is no answer
        ("H3?", UNPARSED),
        ("I looked for H3.", UNPARSED),
    ],
)
def test_presence_phrases_count_only_when_asserted_or_denied(answer: str, expected: str | None) -> None:
    assert parse_label(answer, MARK) == expected


def test_label_spec_rejects_bad_specs() -> None:
    with pytest.raises(ValueError, match="at least two"):
        LabelSpec(("promoter",))
    with pytest.raises(ValueError, match="not in"):
        LabelSpec(("a", "b"), {"c": ("x",)})
    with pytest.raises(ValueError, match="names two labels"):
        LabelSpec(("a", "b"), {"a": ("x",), "b": ("x",)})
    with pytest.raises(ValueError, match="not in"):
        LabelSpec(("a", "b"), presence={"c": ("x",)})


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("The melting temperature is 55.3 \u00b0C.", 55.3),
        ("Tm = 55C", 55.0),
        ("H3K4me3 level: -0.25", -0.25),
        ("The value for seq1 is 3.4E+02", 340.0),
        ("@seq2 0.5", 0.5),
        ("about 1.2\u00d710^-3", 0.0012),
        ("1.2 x 10^-3", 0.0012),
        ("1.2\u00d710\u207b\u00b3", 0.0012),
        ("value: 1e-3", 0.001),
        ("10^-3", 0.001),
        ("1,234 copies", 1234.0),
        ("\u22120.5", -0.5),
        ("+2.5 log units", 2.5),
        ("16S rRNA, 45%", 45.0),
        ("IL-6 expression is 3", 3.0),
        ("The 2nd estimate is 7", 7.0),
        ("EC 1.1.1.1 activity 5", 5.0),
        ("K562 cells: 0.8 TPM", 0.8),
        ("On a scale from 0 to 1, the ratio is 0.3", 0.3),
        ("Between -5 and 5 I predict -1.83.", -1.83),
        ("On a 0-1 scale: 0.7", 0.7),
        ("The value is between 0.4 and 0.6", 0.5),
        ("no number here", UNPARSED),
        ("1e999", UNPARSED),
        ("0.00000000000000002", 2e-17),  # a mantissa whose float repr holds an exponent (crashed the zero-shot run)
        ("2e-17 x 10^3", 2e-14),
    ],
)
def test_single_numbers(answer: str, expected: float | None) -> None:
    got = parse_numbers(answer)
    if expected is None:
        assert got is UNPARSED
    else:
        assert got == pytest.approx(expected)


def test_several_numbers_for_multi_output_tasks() -> None:
    assert parse_numbers("Housekeeping EA: 1.2, developmental EA: -0.3", 2) == pytest.approx((1.2, -0.3))
    assert parse_answer("ON 0.3, OFF 0.5, ON/OFF 0.6", RegressionSpec(3)) == pytest.approx((0.3, 0.5, 0.6))
    assert parse_numbers("only 1", 2) is UNPARSED
    assert find_numbers("H3K4me3 seq1 3.5 and 1.2.3.4 then 7") == [3.5, 7.0]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("EC 1.1.1.1", ("1.1.1.1",)),
        ("The enzyme is 1.2.-.- or EC 3.4.21.4", ("1.2.-.-", "3.4.21.4")),
        ("EC:2.7.11", ("2.7.11.-",)),
        ("ec 1.1.1.1; again 1.1.1.1", ("1.1.1.1",)),
        ("EC 3.5.1.n3", ("3.5.1.n3",)),
        ("version 1.2", UNPARSED),
        ("EC 8.1.1.1", UNPARSED),  # there are seven EC classes
        ("no EC number", UNPARSED),
    ],
)
def test_ec_numbers(answer: str, expected: tuple[str, ...] | None) -> None:
    assert parse_ec_numbers(answer) == expected


def test_ec_spec_limits_and_normalisation() -> None:
    assert parse_answer("EC 1.1.1.1 and EC 2.2.2.2", ECSpec(max_numbers=1)) == ("1.1.1.1",)
    assert normalize_ec("EC 1.2") == "1.2.-.-"
    assert normalize_ec("1.-.3.4") == "1.-.-.-"
    assert parse_answer(None, ECSpec()) is UNPARSED
