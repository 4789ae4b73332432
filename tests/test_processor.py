"""SeqChatProcessor: references, placeholders, labels, padding and errors."""

import copy

import pytest
import torch

from conftest import tiny_config
from seqchat.errors import SeqChatInputError
from seqchat.modeling.processor import IGNORE_INDEX, SeqChatProcessor

DNA = "ACGTACGTAC" * 10  # 100 nt: two windows of 60 with overlap 6
PROT = "MKVLAAGIIE" * 3


@pytest.fixture
def proc(tokenizer):
    return SeqChatProcessor(copy.deepcopy(tokenizer), tiny_config())


def _decode_labels(proc, batch, row=0):
    lab = batch["labels"][row]
    return proc.tokenizer.decode(lab[lab != IGNORE_INDEX])


def test_each_reference_becomes_k_placeholders(proc):
    b = proc([{"role": "user", "content": "Compare @a with @b and @a."}], {"a": DNA, "b": PROT})
    assert int((b["input_ids"] == proc.placeholder_id).sum()) == 3 * 4
    assert b["occurrences"] == [("dna", 0), ("protein", 0), ("dna", 0)]  # @a encoded once, used twice
    assert b["sequence_inputs"]["dna"]["window_to_seq"].tolist() == [0, 0]
    assert b["question_ids"].shape[0] == 3


def test_labels_cover_only_assistant_answers_in_multi_turn(proc):
    conv = [
        {"role": "user", "content": "Is @a a promoter?"},
        {"role": "assistant", "content": "Yes, it is a promoter."},
        {"role": "user", "content": "And its GC content?"},
        {"role": "assistant", "content": "About 50%."},
    ]
    b = proc(conv, {"a": DNA})
    text = _decode_labels(proc, b)
    assert text == "Yes, it is a promoter.<|im_end|>About 50%.<|im_end|>"
    # no placeholder, user text or system text is ever a label
    lab = b["labels"][0]
    assert not ((lab == proc.placeholder_id).any())
    assert (b["input_ids"][0][lab != IGNORE_INDEX] == lab[lab != IGNORE_INDEX]).all()


def test_generation_prompt_ends_with_assistant_header(proc):
    b = proc([{"role": "user", "content": "Describe <dna>."}], [DNA], add_generation_prompt=True)
    assert proc.tokenizer.decode(b["input_ids"][0]).endswith("<|im_start|>assistant\n")
    assert (b["labels"] == IGNORE_INDEX).all()


def test_positional_tags_take_sequences_of_their_modality_in_order(proc):
    b = proc([{"role": "user", "content": "Does <protein> bind <dna>?"}], [DNA, PROT])
    assert b["occurrences"] == [("protein", 0), ("dna", 0)]


def test_rna_reads_through_dna_encoder(proc):
    b = proc([{"role": "user", "content": "Fold @r"}], {"r": "ACGUACGU"})
    assert list(b["sequence_inputs"]) == ["dna"]


def test_padding_sides(proc):
    convs = [
        [{"role": "user", "content": "Short @a"}], [{"role": "user", "content": "A much longer question about @a ?"}]
    ]
    seqs = [{"a": DNA}, {"a": DNA[:50]}]
    right = proc(convs, seqs, padding_side="right")
    left = proc(convs, seqs, padding_side="left")
    assert right["attention_mask"][0, -1] == 0 and right["attention_mask"][0, 0] == 1
    assert left["attention_mask"][0, 0] == 0 and left["attention_mask"][0, -1] == 1
    for b in (right, left):
        assert b["input_ids"].shape == right["input_ids"].shape
    # two distinct sequences in the batch: one key each
    assert len(right["sequence_inputs"]["dna"]["keys"]) == 2


@pytest.mark.parametrize(
    "content, seqs, message",
    [
        ("What about @zz?", {"a": DNA}, r"refers to @zz, but no sequence has that name \(available: @a\)"),
        ("Nothing referenced here", {"a": DNA}, r"sequence\(s\) a never referenced"),
        ("Is <dna> a promoter?", {}, "has no DNA sequence left"),
        ("Is <protein> soluble?", [DNA], "has no PROTEIN sequence left"),
        ("Bad <|seq|> token @a", {"a": DNA}, "reserved token"),
    ],
)
def test_reference_errors(proc, content, seqs, message):
    with pytest.raises(SeqChatInputError, match=message):
        proc([{"role": "user", "content": content}], seqs)


def test_email_and_trailing_punctuation(proc):
    b = proc([{"role": "user", "content": "Mail me@example.org about @seq1."}], {"seq1": DNA})
    assert b["occurrences"] == [("dna", 0)]


def test_too_long_and_wrong_modality(tokenizer):
    p = SeqChatProcessor(copy.deepcopy(tokenizer), tiny_config(max_sequence_length=50))
    with pytest.raises(SeqChatInputError, match="at most 50"):
        p([{"role": "user", "content": "@a"}], {"a": DNA})
    dna_only = tiny_config(
        encoders={"dna": {"source": "nt-tiny", "tokenizer": "nt_6mer", "window": 60, "overlap": 6}},
        modalities={"dna": "dna"},
    )
    p = SeqChatProcessor(copy.deepcopy(tokenizer), dna_only)
    with pytest.raises(SeqChatInputError, match="reads only DNA"):
        p([{"role": "user", "content": "@a"}], {"a": PROT})


def test_window_pooled_mlp_uses_one_token_per_window(tokenizer):
    p = SeqChatProcessor(copy.deepcopy(tokenizer), tiny_config(projector={"type": "mlp", "pool_windows": True}))
    b = p([{"role": "user", "content": "@a and @b"}], {"a": DNA, "b": DNA[:40]})
    assert int((b["input_ids"] == p.placeholder_id).sum()) == 2 + 1
    assert torch.equal(b["sequence_inputs"]["dna"]["window_to_seq"], torch.tensor([0, 0, 1]))


def test_referenced_subset_picks_named_sequences_from_a_pool():
    from seqchat.modeling.processor import referenced_subset
    from seqchat.modeling.sequences import as_named_sequences

    pool = as_named_sequences({"a": DNA, "b": PROT, "c": DNA})
    assert list(referenced_subset([{"role": "user", "content": "Is @a like @c."}], pool)) == ["a", "c"]
    assert list(referenced_subset([{"role": "user", "content": "Is <dna> ok?"}], pool)) == ["a", "b", "c"]
    # an unknown name stays unresolved so the processor reports it
    assert referenced_subset([{"role": "user", "content": "@zz"}], pool) == {}
