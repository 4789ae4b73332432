"""The zero-shot decoder baseline: the Biology-Instructions prompt, and a real run of the SmolLM2 decoder."""

from __future__ import annotations

import pytest

from conftest import SHARED_DATA
from seqchat.evaluation.systems import zeroshot_hint, zeroshot_prompt
from seqchat.tasks import templates as T
from seqchat.tasks.registry import get_task


def test_prompt_is_the_biology_instructions_baseline_format():
    q = T.render_test_question("promoter_300_tata", "seq", 0).replace("@seq", "ACGTAC")
    assert zeroshot_prompt("promoter_300_tata", "ACGTAC", 0) == (
        f"My question is {q} This is a binary classification task. Return yes or no. Do not explain or repeat."
    )
    assert "@" not in zeroshot_prompt("crispr_on_target", "ACGU", 2, {"cell_line": "HeLa"})
    assert "ACGTA" in zeroshot_prompt("enhancers", "ACGTACGTAC", 1, max_residues=5)
    assert "ACGTAC" not in zeroshot_prompt("enhancers", "ACGTACGTAC", 1, max_residues=5)


def test_hints_per_task_type():
    assert zeroshot_hint(get_task("splice_sites_human")) == "Return one class: acceptor, donor, or neither."
    assert zeroshot_hint(get_task("protein_gb1")) == "Return one numeric value with two decimal places."
    assert zeroshot_hint(get_task("protein_ec")).startswith("Return Enzyme Commission number(s)")


@pytest.mark.integration
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="shared data not present")
def test_real_decoder_answers_are_parsed_and_counted(tmp_path):
    from seqchat.cli import main
    from seqchat.evaluation.benchmark import load_run

    out = tmp_path / "zs"
    assert main(["baseline", "zeroshot", "--tasks", "core_promoter_tata", "--max-per-task", "2",
                 "--max-new-tokens", "6",
                 "--out", str(out)]) == 0  # fmt: skip
    run, rows = load_run(out)
    m = rows["core_promoter_tata"]["metrics"]
    assert m["n"] == 2 and 0 <= m["n_unparsed"] <= 2 and m["n_truncated"] == 0
    assert run["config"]["decoder"] == "smollm2-135m-instruct" and run["system"] == "zeroshot"
