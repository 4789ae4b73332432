"""Metrics against values computed by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seqchat.evaluation import metrics as M
from seqchat.evaluation.metrics import METRICS, evaluate_answers, evaluate_predictions
from seqchat.tasks.parsing import LabelSpec, RegressionSpec


def test_binary_classification_metrics() -> None:
    t = [1, 1, 1, 0, 0, 0]
    p = [1, 1, 0, 0, 0, 1]
    # TP=2 FN=1 TN=2 FP=1: MCC = (2*2 - 1*1) / sqrt(3*3*3*3) = 3/9; F1 = 2*2 / (2*2 + 1 + 1)
    assert M.mcc(t, p) == pytest.approx(1 / 3)
    assert M.accuracy(t, p) == pytest.approx(4 / 6)
    assert M.f1_binary(t, p) == pytest.approx(2 / 3)


def test_macro_f1_averages_over_true_classes_only() -> None:
    t = [0, 0, 1, 1, 2, 2]
    # class 0: TP1 FP1 FN1 -> 0.5; class 1: TP2 FP1 -> 0.8; class 2: TP1 FN1 -> 2/3
    assert M.f1_macro(t, [0, 1, 1, 1, 2, 0]) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    # an "unparsed" class 3 is a miss for class 1 but adds no zero-F1 class: (0.5 + 1 + 2/3) / 3
    assert M.f1_macro(t, [0, 3, 1, 1, 2, 0]) == pytest.approx((0.5 + 1.0 + 2 / 3) / 3)


def test_auroc_binary_and_multilabel() -> None:
    # positive/negative pairs: 0.35>0.1 yes, 0.35>0.4 no, 0.8>both yes -> 3/4
    assert M.auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    truth = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    # column 1 has no positive and is skipped; column 0 is the binary case above
    assert M.auroc(truth, np.array([[0.35, 0.2], [0.1, 0.3], [0.8, 0.1], [0.4, 0.9]])) == pytest.approx(0.75)


def test_regression_metrics() -> None:
    t, p = [1, 2, 3], [1, 2, 4]
    # deviations t: -1 0 1; p: -4/3 -1/3 5/3 -> r = 3 / sqrt(2 * 42/9) = 9 / sqrt(84)
    assert M.pearson(t, p) == pytest.approx(9 / math.sqrt(84))
    assert M.spearman(t, p) == pytest.approx(1.0)
    # SS_res = 1, SS_tot = 2
    assert M.r2(t, p) == pytest.approx(0.5)
    assert M.r2_pearson(t, p) == pytest.approx(81 / 84)
    # two outputs: the mean over outputs (second output is a perfect, reversed copy -> -1)
    assert M.pearson([[1, 3], [2, 2], [3, 1]], [[1, 3], [2, 2], [4, 1]]) == pytest.approx(
        (9 / math.sqrt(84) + 1) / 2
    )


def test_fmax_cafa_definition() -> None:
    truth = [[1, 1, 0], [1, 0, 1], [0, 0, 0]]  # the third protein has no annotation and is ignored
    scores = [[0.9, 0.4, 0.2], [0.5, 0.1, 0.35], [0.9, 0.9, 0.9]]
    # t in (0.2, 0.35]: protein 1 predicts {0,1} and protein 2 {0,2}, both exactly their truth -> F=1
    assert M.fmax(truth, scores) == pytest.approx(1.0)
    truth2 = [[1, 1, 0], [0, 0, 1]]
    # t in (0.3, 0.35]: p1 {0,1} P=1 R=1; p2 {0,2} P=1/2 R=1 -> P=0.75, R=1, F=6/7 (the best threshold)
    # t in (0.35, 0.4]: p2 {0} P=0 R=0 -> P=R=0.5; t in (0.5, 0.9]: p2 predicts nothing -> P=1, R=0.25
    assert M.fmax(truth2, [[0.9, 0.4, 0.2], [0.5, 0.1, 0.35]]) == pytest.approx(6 / 7)


def test_ec_hierarchical_precision_recall_and_exact_match() -> None:
    truth = ["1.1.1.1", "2.1.1.1", "1.2.3.4", "3.1.1.1;3.2.1.1"]
    pred = [("1.1.1.1",), None, ("1.2.-.-",), ("3.1.1.2",)]
    # ex1: 4 of 4; ex2 unparsed: 0 shared, counts 4 predicted; ex3: {1, 1.2} of {1, 1.2, 1.2.3, 1.2.3.4};
    # ex4: predicted {3, 3.1, 3.1.1, 3.1.1.2}, true {3, 3.1, 3.1.1, 3.1.1.1, 3.2, 3.2.1, 3.2.1.1} -> 3 shared
    # hP = (4+0+2+3) / (4+4+2+4) = 9/14; hR = 9 / (4+4+4+7) = 9/19
    out = M.hierarchical_prf(truth, pred)
    assert out["hprecision"] == pytest.approx(9 / 14)
    assert out["hrecall"] == pytest.approx(9 / 19)
    assert out["hf1"] == pytest.approx(2 * (9 / 14) * (9 / 19) / (9 / 14 + 9 / 19))
    assert M.ec_exact_match(truth, pred) == pytest.approx(1 / 4)
    assert M.ec_exact_match(["1.1.1.1;2.2.2.2"], [("2.2.2.2", "EC 1.1.1.1")]) == 1.0


def test_knn_hierarchical_precision_leave_one_out_and_reference_set() -> None:
    x = np.array([[0.0], [1.0], [10.0], [11.0]])
    ecs = ["1.1.1.1", "1.1.1.2", "1.1.2.1", "2.1.1.1"]
    # k=1: 0<->1 share 3 levels each, 10<->11 share none -> (3+3+0+0)/16
    # k=3: everyone sees everyone; best overlaps 3, 3, 2 (1.1.2.1 vs 1.1.1.x), 0 -> 8/16
    out = M.knn_hierarchical_precision(x, ecs, ks=(1, 3), metric="euclidean")
    assert out == {1: pytest.approx(6 / 16), 3: pytest.approx(8 / 16)}
    # against a reference set: queries at 0 and 11 retrieve the reference at 0.5 (1.1.1.9) and 20 (2.1.1.1)
    ref = M.knn_hierarchical_precision(
        np.array([[0.0], [11.0]]), ["1.1.1.1", "2.1.1.1"], ks=(1,),
        reference_embeddings=np.array([[0.5], [20.0]]), reference_ec_numbers=["1.1.1.9", "2.1.1.1"],
        metric="euclidean",
    )  # fmt: skip
    assert ref[1] == pytest.approx((3 + 4) / 8)


def test_silhouette_by_ec_class() -> None:
    x = np.array([[0.0], [1.0], [10.0], [11.0]])
    # by EC class: point 0: a=1, b=(10+11)/2 -> 9.5/10.5; point 1: a=1, b=9.5 -> 8.5/9.5; symmetric for the rest
    expected = (9.5 / 10.5 + 8.5 / 9.5) / 2
    assert M.silhouette_by_ec(x, ["1.1.1.1", "1.2.3.4", "2.1.1.1", "2.5.5.5"], level=1) == pytest.approx(
        expected
    )


REF = "The cat sat on the mat"
HYP = "the cat sat on a mat"


def test_bleu_by_hand() -> None:
    # p1 = 5/6, p2 = 3/5, p3 = 2/4, p4 = 1/3, equal lengths so BP = 1
    assert M.bleu([REF], [HYP], n=1) == pytest.approx(5 / 6)
    assert M.bleu([REF], [HYP], n=2) == pytest.approx((5 / 6 * 3 / 5) ** 0.5)
    assert M.bleu([REF], [HYP], n=3) == pytest.approx((5 / 6 * 3 / 5 * 1 / 2) ** (1 / 3))
    assert M.bleu([REF], [HYP], n=4) == pytest.approx((1 / 12) ** 0.25)
    # brevity penalty: c=2, r=6 -> exp(1 - 3)
    assert M.bleu([REF], ["the cat"], n=1) == pytest.approx(math.exp(-2))
    assert M.bleu([REF], [HYP], n=1, corpus=True) == pytest.approx(5 / 6)


def test_meteor_by_hand_and_synonyms() -> None:
    # 5 matches (the cat sat on / mat), P = R = 5/6, 2 chunks: penalty 0.5 * (2/5)^3
    assert M.meteor(["the cat sat on my mat"], [HYP]) == pytest.approx(5 / 6 * (1 - 0.5 * 0.4**3))
    # with "the" twice in the reference NLTK aligns the hypothesis' "the" to the last one: 3 chunks
    assert M.meteor([REF], [HYP]) == pytest.approx(5 / 6 * (1 - 0.5 * 0.6**3))
    # "attaches" matches "binds" only through WordNet: 4 matches in 1 chunk -> 1 - 0.5 * (1/4)^3
    assert M.meteor_uses_synonyms(), "WordNet missing: run scripts/install.sh (apt-get install wordnet-base)"
    assert M.meteor(["the protein binds dna"], ["the protein attaches dna"]) == pytest.approx(1 - 0.5 / 64)


def test_meteor_without_wordnet_falls_back_to_exact_and_stem(monkeypatch: pytest.MonkeyPatch) -> None:
    import seqchat.evaluation.wordnet as wn

    monkeypatch.setattr(wn, "load_wordnet", lambda: None)
    with pytest.warns(UserWarning, match="WordNet not installed"):
        # 3 matches of 4 words, 2 chunks: 0.75 * (1 - 0.5 * (2/3)^3)
        assert M.meteor(["the protein binds dna"], ["the protein attaches dna"]) == pytest.approx(
            0.75 * (1 - 0.5 * (2 / 3) ** 3)
        )
    assert evaluate_predictions(["x"], ["x"], "text", metrics=["bleu1"])["meteor_synonyms"] is False


def test_rouge_l_by_hand() -> None:
    # LCS "the cat sat on mat" = 5 of 6 words on both sides
    assert M.rouge_l([REF], [HYP]) == pytest.approx(5 / 6)
    assert M.rouge_l([[REF, HYP]], [HYP]) == pytest.approx(1.0)


def test_evaluate_binary_unparsed_becomes_the_fill_class() -> None:
    labels = ["promoter", "no promoter"]
    truth = ["promoter", "promoter", "no promoter", "no promoter"]
    out = evaluate_predictions(["promoter", None, "no promoter", "promoter"], truth, "binary", labels=labels)
    # the unparsed answer becomes the default fill, the negative "no promoter": TP1 FN1 TN1 FP1
    assert out["accuracy"] == pytest.approx(0.5)
    assert out["mcc"] == pytest.approx(0.0)
    assert out["f1"] == pytest.approx(0.5)
    assert (out["n"], out["n_unparsed"], out["positive_label"]) == (4, 1, "promoter")
    assert out["fill_label"] == "no promoter"


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_unparsed_answers_never_look_at_the_truth(kind: str) -> None:
    labels = ["yes", "no"] if kind == "binary" else ["a", "b", "c"]
    fill = labels[0]
    # all answers unparsed: they all become the fill class whatever the truth, so accuracy is the
    # fill class's share of the truth (the old rule made every unparsed answer the opposite: accuracy 0)
    for truth in (labels[:1] * 4, labels[1:2] * 4, [labels[0], labels[1]] * 2):
        out = evaluate_predictions([None] * 4, truth, kind, labels=labels, fill_label=fill)
        assert out["accuracy"] == pytest.approx(sum(t == fill for t in truth) / 4)
    sometimes = evaluate_predictions([None] * 4, ["yes", "no", "yes", "no"], "binary", labels=["yes", "no"])
    assert sometimes["fill_label"] == "no" and sometimes["accuracy"] == pytest.approx(0.5)


def test_evaluate_multiclass_and_multilabel() -> None:
    out = evaluate_predictions(
        ["a", None, "c", "b"], ["a", "b", "c", "c"], "multiclass", labels=["a", "b", "c"]
    )
    assert out["accuracy"] == pytest.approx(0.5)
    assert out["n_unparsed"] == 1
    with pytest.raises(ValueError, match="not one of"):
        evaluate_predictions(["z"], ["a"], "multiclass", labels=["a", "b"])
    ml = evaluate_predictions(
        [frozenset({"a"}), None], [{"a", "b"}, {"c"}], "multilabel", labels=["a", "b", "c"]
    )
    # the unparsed row predicts nothing: precision over protein 1 only (1), recall (1/2 + 0) / 2 -> F = 0.4
    assert ml["fmax"] == pytest.approx(0.4)
    assert ml["subset_accuracy"] == 0.0


def test_evaluate_regression_fill_rules() -> None:
    truth = [1.0, 2.0, 3.0, 4.0]
    # without fill_value, the unparsed answer takes the mean of parsed ones (3): SS_res = 0+1+0+1, SS_tot = 5
    out = evaluate_predictions([1.0, None, 3.0, 5.0], truth, "regression")
    assert out["r2"] == pytest.approx(1 - 2 / 5)
    assert (out["fill_rule"], out["fill_value"], out["n_unparsed"]) == ("mean_of_parsed_predictions", 3.0, 1)
    # with the training mean passed in (2.0), the unparsed answer is exactly right here
    out = evaluate_predictions([1.0, None, 3.0, 4.0], truth, "regression", fill_value=2.0, metrics=["r2"])
    assert out["r2"] == pytest.approx(1.0)
    assert out["fill_rule"] == "fill_value"
    multi = evaluate_predictions(
        [(1.0, 2.0), None], [(1.0, 2.0), (3.0, 5.0)], "regression", fill_value=[3.0, 5.0]
    )
    assert multi["r2"] == pytest.approx(1.0)
    nothing = evaluate_predictions([None, None], [1.0, 2.0], "regression", metrics=["pearson"])
    assert nothing["fill_rule"] == "none_parsed" and math.isnan(nothing["pearson"])


def test_evaluate_ec_and_text_and_errors() -> None:
    out = evaluate_predictions([("1.1.1.1",), None], ["1.1.1.1", "2.1.1.1"], "ec")
    assert out["ec_hprecision"] == pytest.approx(0.5)
    assert out["ec_exact_match"] == pytest.approx(0.5)
    text = evaluate_predictions([HYP, None], [REF, REF], "text")
    assert text["bleu1"] == pytest.approx(5 / 12)  # the unparsed answer scores 0
    assert text["meteor_synonyms"] is True
    with pytest.raises(ValueError, match="unknown task type"):
        evaluate_predictions([], [], "ranking")
    with pytest.raises(ValueError, match="unknown metrics"):
        evaluate_predictions([], [], "binary", labels=["a", "b"], metrics=["bogus"])
    with pytest.raises(ValueError, match="needs its label names"):
        evaluate_predictions(["a"], ["a"], "binary")
    assert set(METRICS) >= {
        "mcc",
        "f1",
        "f1_macro",
        "auroc",
        "fmax",
        "pearson",
        "spearman",
        "r2",
        "meteor",
        "rouge_l",
    }


def test_evaluate_answers_parses_then_scores() -> None:
    spec = LabelSpec(("promoter", "no promoter"))
    answers = ["It is a promoter.", "No promoter here.", "Not a promoter.", "Hard to say."]
    out = evaluate_answers(answers, ["promoter", "no promoter", "promoter", "no promoter"], spec, "binary")
    # parsed: promoter, no promoter, no promoter (wrong), unparsed -> the fixed negative (right here) -> 3 of 4
    assert out["accuracy"] == pytest.approx(0.75)
    assert out["n_unparsed"] == 1
    reg = evaluate_answers(
        ["about 2.5", "seq1: n/a", "3.5"], [2.0, 3.0, 4.0], RegressionSpec(), "regression", fill_value=3.0
    )
    # predictions 2.5, 3.0 (filled), 3.5: SS_res = 0.25 + 0 + 0.25, SS_tot = 2
    assert reg["r2"] == pytest.approx(1 - 0.5 / 2)
