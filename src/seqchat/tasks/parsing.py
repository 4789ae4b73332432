"""Parse free-text model answers into labels, numbers or EC numbers.

The caller describes the task with a small spec and calls `parse_answer(text, spec)`:

- `LabelSpec(labels, synonyms, multi_label, presence)`: label names such as ("promoter", "no promoter"),
  each with extra phrases that name it, and phrases whose asserted presence names it ("H3 is present",
  "there is no H3"). Returns one label (or a frozenset for multi-label).
- `RegressionSpec(n_outputs)`: returns a float, or a tuple of floats when n_outputs > 1.
- `ECSpec(max_numbers)`: returns a tuple of EC numbers written with four levels ("1.2.-.-").

An answer that cannot be read returns None (`UNPARSED`); the metric helpers count it as wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

UNPARSED = None

# ---------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")
_CONTRACTIONS = (
    (re.compile(r"\bcan't\b"), "can not"),
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"n't\b"), " not"),
    (re.compile(r"\bcannot\b"), "can not"),
)
# a clause boundary ends the reach of a negation cue
_BOUNDARIES = frozenset(".;:!?,") | frozenset(
    {"but", "however", "although", "though", "whereas", "while", "whilst", "yet", "nor"}
)  # "nor" also ends the reach of "neither", so "neither X nor Y" negates Y once, not twice
# (cue, how many tokens after it the cue reaches): determiner-like cues negate the noun phrase
# right after them, verb-like cues the rest of their clause
_NEGATION_CUES: tuple[tuple[re.Pattern[str], int], ...] = tuple(
    (re.compile(pattern), reach)
    for pattern, reach in (
        (
            r"\bno (?:clear |strong |significant |obvious |detectable |recognizable |recognisable )?"
            r"(?:evidence|sign|signs|indication|indications|support|signal|signals) (?:of|for)\b",
            4,
        ),
        (r"\b(?:absence|lack|devoid|free) of\b", 4),
        (r"\b(?:rather than|instead of|as opposed to|other than)\b", 4),
        (r"\b(?:no|without|none of)\b", 4),
        (r"\bnon\b", 2),
        (r"\b(?:not|never|neither|nor|unlikely|lack|lacks|lacking|lacked|fails to|failed to)\b", 8),
    )
)
# a negation written after the label ("promoter is absent", "enhancer elements are not present")
_POST_NEGATION_RE = re.compile(
    r"^(?: [a-z0-9]+){0,2}? (?:(?:is|are|was|were|seems|seem|appears|appear)(?: to be)? )?"
    r"(?:absent|missing|lacking|nonexistent|undetected|"
    r"not (?:present|found|detected|observed|identified|seen|evident|there|enriched|bound))\b"
)
# a presence phrase asserted by the words after it ("H3 is present", "H3K4me3 was detected at this locus")
_POST_PRESENCE_RE = re.compile(
    r"^(?: (?!(?:not|no|never)\b)[a-z0-9]+){0,2}? (?:(?:is|are|was|were|seems|seem|appears|appear)(?: to be)? )?"
    r"(?:present|there|detected|found|observed|identified|seen|evident|enriched|bound)\b"
)
# ... or by the words right before it ("there is H3", "this region has H3K4me3", "it contains a promoter")
_PRE_PRESENCE_RE = re.compile(
    r"(?:^| )(?:there (?:is|are|was|were)|has|have|had|contains|contain|carries|carry|shows|show|harbours|harbors)"
    r"(?: (?:a|an|the|some|clear|strong))?$"
)


def normalize_text(text: str) -> str:
    """Lower-case and split into space-joined tokens the way label phrases and answers are compared."""
    s = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    for pattern, repl in _CONTRACTIONS:
        s = pattern.sub(repl, s)
    # "5.8S_rRNA", "5_8S rRNA", "non-enhancer", "H/ACA box" all become space-separated words
    s = re.sub(r"(?<=\d)\.(?=\d)", " ", s)
    s = re.sub(r"[_\-/\u2010-\u2014]", " ", s)
    return " ".join(_TOKEN_RE.findall(s))


@dataclass(frozen=True)
class LabelSpec:
    """A classification task's label names, extra phrases per label, and whether several labels may hold."""

    labels: tuple[str, ...]
    synonyms: Mapping[str, Sequence[str]] = field(default_factory=dict)
    multi_label: bool = False
    # phrases for what a label asserts the presence of ("H3", "promoter"): they name the label only when the
    # answer asserts ("H3 is present") or denies ("no H3", "H3 is absent") that presence
    presence: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(self.labels))
        if len(self.labels) < 2 and not self.multi_label:
            raise ValueError(f"a classification task needs at least two labels, got {self.labels}")
        unknown = (set(self.synonyms) | set(self.presence)) - set(self.labels)
        if unknown:
            raise ValueError(f"synonyms given for labels {sorted(unknown)} that are not in {self.labels}")
        self.phrases()  # a phrase naming two labels is a spec error, reported now
        self.presence_phrases()

    def phrases(self) -> list[tuple[tuple[str, ...], str]]:
        """(normalised token tuple, label) for every name and synonym, longest first."""
        return _phrase_table({lab: (lab, *self.synonyms.get(lab, ())) for lab in self.labels})

    def presence_phrases(self) -> list[tuple[tuple[str, ...], str]]:
        """(normalised token tuple, label) for every presence phrase, longest first."""
        return _phrase_table(self.presence)

    def parse(self, answer: str) -> str | frozenset[str] | None:
        """The label(s) the answer asserts, or None."""
        return parse_labels(answer, self) if self.multi_label else parse_label(answer, self)


def _phrase_table(by_label: Mapping[str, Sequence[str]]) -> list[tuple[tuple[str, ...], str]]:
    out: dict[tuple[str, ...], str] = {}
    for label, phrases in by_label.items():
        for phrase in phrases:
            toks = tuple(normalize_text(phrase).split())
            if toks and out.setdefault(toks, label) != label:
                raise ValueError(f"phrase '{phrase}' names two labels: {out[toks]} and {label}")
    return sorted(out.items(), key=lambda kv: -len(kv[0]))


@dataclass(frozen=True)
class _Mention:
    label: str
    start: int  # token index
    negated: bool


def _token_matches(token: str, phrase_token: str, last: bool) -> bool:
    # plurals of the phrase's last word ("promoters", "tRNAs") still name the label
    return token == phrase_token or (last and token in (phrase_token + "s", phrase_token + "es"))


def _find_mentions(
    tokens: list[str], phrases: list[tuple[tuple[str, ...], str]], taken: list[bool]
) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, label) phrase matches on tokens not yet `taken`, longer phrases first."""
    found: list[tuple[int, int, str]] = []
    for phrase, label in phrases:
        n = len(phrase)
        for i in range(len(tokens) - n + 1):
            if any(taken[i : i + n]):
                continue
            if all(_token_matches(tokens[i + j], phrase[j], j == n - 1) for j in range(n)):
                found.append((i, i + n, label))
                for j in range(i, i + n):
                    taken[j] = True
    return sorted(found)


def _cue_spans(text: str, offsets: list[int]) -> list[tuple[int, int, int]]:
    """(first token, last token, reach) of every negation cue in the normalised text."""
    import bisect

    spans = []
    covered: set[int] = set()
    for pattern, reach in _NEGATION_CUES:
        for m in pattern.finditer(text):
            first = bisect.bisect_left(offsets, m.start())
            last = bisect.bisect_right(offsets, m.end() - 1) - 1
            # a longer cue ("no evidence of") already counted its own "no"
            if covered.isdisjoint(range(first, last + 1)):
                spans.append((first, last, reach))
                covered.update(range(first, last + 1))
    return spans


def _mentions(answer: str, spec: LabelSpec) -> list[_Mention]:
    text = normalize_text(answer)
    tokens = text.split()
    offsets, pos = [], 0
    for tok in tokens:
        offsets.append(pos)
        pos += len(tok) + 1
    cues = _cue_spans(text, offsets)

    def negated(start: int, end: int) -> bool:
        flips = 0
        for first, last, reach in cues:
            if last >= start and first < end:
                continue  # the cue is inside the label phrase itself ("no promoter")
            if last < start <= last + reach and not any(t in _BOUNDARIES for t in tokens[last + 1 : start]):
                flips += 1
        flips += _negated_after(tokens[end : end + 8])
        return flips % 2 == 1

    taken = [False] * len(tokens)
    out = [
        _Mention(label, start, negated(start, end))
        for start, end, label in _find_mentions(tokens, spec.phrases(), taken)
    ]
    for start, end, label in _find_mentions(tokens, spec.presence_phrases(), taken):
        denied = negated(start, end)
        if denied or _asserted(tokens, start, end):
            out.append(_Mention(label, start, denied))
    return sorted(out, key=lambda m: m.start)


def _clause(rest: list[str]) -> list[str]:
    """The words up to the next clause boundary."""
    out = []
    for tok in rest:
        if tok in _BOUNDARIES:
            break
        out.append(tok)
    return out


def _asserted(tokens: list[str], start: int, end: int) -> bool:
    """Whether the words around a presence phrase assert it ("H3 is present", "H4ac: present", "there is H3")."""
    rest = tokens[end : end + 8]
    if rest[:1] == [":"]:
        rest = rest[1:]
    before = " ".join(reversed(_clause(list(reversed(tokens[max(0, start - 4) : start])))))
    return bool(_POST_PRESENCE_RE.match(" " + " ".join(_clause(rest))) or _PRE_PRESENCE_RE.search(before))


def _negated_after(rest: list[str]) -> bool:
    """Whether the words right after a label deny it ("promoter is absent", "enhancer: no")."""
    if rest[:1] == [":"]:
        if rest[1:2] in (["no"], ["none"], ["absent"]):
            return True
        rest = rest[1:]
    return bool(_POST_NEGATION_RE.match(" " + " ".join(_clause(rest))))


def parse_label(answer: str, spec: LabelSpec) -> str | None:
    """The single label a binary or multi-class answer asserts, honouring negations; None if unclear.

    A negated label votes for the other label in a binary task and rules itself out in a
    multi-class one. Two different asserted labels make the answer ambiguous (None), unless the
    answer opens with a label ("Yes, ...", "Promoter. ..."), which is then taken as the verdict.
    """
    mentions = _mentions(answer, spec)
    if not mentions:
        return UNPARSED
    votes: list[tuple[int, str]] = []
    ruled_out: set[str] = set()
    for m in mentions:
        if not m.negated:
            votes.append((m.start, m.label))
        elif len(spec.labels) == 2:
            votes.append((m.start, next(lab for lab in spec.labels if lab != m.label)))
        else:
            ruled_out.add(m.label)
    distinct = list(dict.fromkeys(label for _, label in sorted(votes)))
    if len(distinct) == 1:
        return distinct[0]
    if len(distinct) > 1:
        first = min(mentions, key=lambda m: m.start)
        return first.label if first.start == 0 and not first.negated else UNPARSED
    remaining = [lab for lab in spec.labels if lab not in ruled_out]
    return remaining[0] if len(remaining) == 1 else UNPARSED


def parse_labels(answer: str, spec: LabelSpec) -> frozenset[str] | None:
    """Every label a multi-label answer asserts (negated mentions left out); None if it names none."""
    mentions = _mentions(answer, spec)
    if not mentions:
        return UNPARSED
    return frozenset(m.label for m in mentions if not m.negated)


# ---------------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------------

_SUPERSCRIPTS = str.maketrans(
    "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079\u207b\u207a", "0123456789-+"
)
_MINUS = "-+\u2212\u2013"
# dotted groups of three or more numbers (EC numbers, versions, IPs) hold no answer value
_DOTTED_RE = re.compile(r"(?<![\w.])\d+(?:\.(?:\d+|-|n\d+)){2,}(?![\w.])")
_NUMBER_RE = re.compile(
    rf"(?P<sign>(?<![\w.])[{_MINUS}])?"
    r"(?<![\w@#$.])"
    r"(?P<mant>(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+)"
    r"(?P<exp>\s?[eE]\s?[-+\u2212]?\d+"
    r"|\s?[x\u00d7*\u00b7]\s?10\s?(?:\^|\*\*)\s?[-+\u2212]?\d+"
    rf"|\s?[x\u00d7*\u00b7]\s?10[\u207b\u207a]?[\u2070\u00b9\u00b2\u00b3\u2074-\u2079]+)?"
    r"(?P<pow>\^\s?[-+\u2212]?\d+)?"
)
_RANGE_RES = (
    re.compile(
        r"\b(?:from|between|range of|ranges from|scale of|scale from)\s+\S+\s+(?:to|and|-)\s+[^\s,;]+",
        re.IGNORECASE,
    ),
    re.compile(r"(?<![\w.^])\d+(?:\.\d+)?\s?[-\u2013]\s?\d+(?:\.\d+)?(?![\w.])"),  # "0-1", "5 - 10"
)
# letters that may follow a number directly without making it part of an identifier
_UNITS = frozenset(
    {"%", "bp", "kb", "mb", "nt", "aa", "kda", "da", "c", "f", "k", "x", "fold", "h", "hr", "min", "ms",
     "mm", "nm", "um", "pm", "mg", "ml", "g", "l", "m", "kcal", "kj", "mol", "tpm", "fpkm", "rpkm"}
)  # fmt: skip


@dataclass(frozen=True)
class _Number:
    value: float
    start: int
    end: int


def _number_value(m: re.Match[str]) -> float:
    mant = float(m["mant"].replace(",", ""))
    sign = -1.0 if m["sign"] and m["sign"] != "+" else 1.0
    exp = 0
    if m["exp"]:
        e = m["exp"].translate(_SUPERSCRIPTS).replace("\u2212", "-")
        # "e-3" or "x 10^-3": the exponent is the last signed integer in the suffix
        exp = int(
            re.findall(r"[-+]?\d+", e.split("10", 1)[1] if re.search(r"[x\u00d7*\u00b7]", e) else e)[-1]
        )
    if m["pow"]:
        # "10^-3" on its own: the mantissa is the base
        try:
            return sign * mant ** int(m["pow"][1:].replace("\u2212", "-"))
        except (OverflowError, ZeroDivisionError):
            return math.inf  # not finite, so the number is dropped
    # through Decimal, so "1e999" becomes inf (dropped) instead of raising, and a tiny mantissa whose repr
    # already holds an exponent ("2e-17") still scales
    return float(Decimal(repr(sign * mant)).scaleb(exp))


def _is_identifier_tail(text: str, end: int) -> bool:
    """True when the characters right after a number make it part of a word ("16S", "2nd", "seq1_a")."""
    tail = re.match(r"[A-Za-z\u00b0\u00b5_%]+", text[end:])
    if not tail:
        return end < len(text) and text[end] in "@#"
    word = tail.group(0).lower().lstrip("\u00b0")
    return "_" in word or (word not in _UNITS and word != "")


def find_numbers(answer: str) -> list[float]:
    """Every stand-alone number in the text, in order, skipping identifiers (H3K4me3, seq1) and EC-like strings."""
    return [n.value for n in _numbers(answer)]


def _numbers(answer: str) -> list[_Number]:
    text = _DOTTED_RE.sub(lambda m: " " * len(m.group(0)), answer)
    out = []
    for m in _NUMBER_RE.finditer(text):
        start = m.start("mant")
        # "seq-2", "IL-6": a hyphen after letters joins the number to a name; after a digit it is a range
        if start >= 2 and text[start - 1] in _MINUS[:1] + "\u2013" and text[start - 2].isalpha():
            continue
        if _is_identifier_tail(text, m.end()):
            continue
        value = _number_value(m)
        if math.isfinite(value):
            out.append(_Number(value, m.start(), m.end()))
    return out


@dataclass(frozen=True)
class RegressionSpec:
    """A regression task with `n_outputs` numbers per answer."""

    n_outputs: int = 1

    def parse(self, answer: str) -> float | tuple[float, ...] | None:
        """The answer's value(s), or None."""
        return parse_numbers(answer, self.n_outputs)


def parse_numbers(answer: str, n_outputs: int = 1) -> float | tuple[float, ...] | None:
    """The first `n_outputs` numbers of the answer (a float when 1), or None when there are fewer.

    Numbers inside a stated range ("on a scale from 0 to 1", "between -5 and 5") are skipped
    when the answer gives enough other numbers; an answer that only states a range gets its
    midpoint.
    """
    numbers = _numbers(answer)
    in_range: list[tuple[int, int]] = []
    for m in (m for pattern in _RANGE_RES for m in pattern.finditer(answer)):
        inside = [n for n in numbers if m.start() <= n.start < m.end()]
        if len(inside) == 2:
            in_range.append((numbers.index(inside[0]), numbers.index(inside[1])))
    skip = {i for pair in in_range for i in pair}
    kept = [n.value for i, n in enumerate(numbers) if i not in skip]
    if not kept and in_range and n_outputs == 1:
        a, b = min(in_range)
        kept = [(numbers[a].value + numbers[b].value) / 2]
    elif len(kept) < n_outputs:
        # too few numbers outside ranges: a multi-output answer may list its values as "0.2-0.5"
        kept = [n.value for n in numbers]
    if len(kept) < n_outputs:
        return UNPARSED
    return kept[0] if n_outputs == 1 else tuple(kept[:n_outputs])


# ---------------------------------------------------------------------------------------------
# EC numbers
# ---------------------------------------------------------------------------------------------

_EC_FULL_RE = re.compile(
    r"(?<![\w.])(?:EC[\s:]*)?(?P<a>[1-7])\.(?P<b>\d+|-)\.(?P<c>\d+|-)\.(?P<d>n?\d+|-)(?![\w.]*\d)",
    re.IGNORECASE,
)
# fewer than four levels only count when introduced by "EC" ("EC 1.1", "EC:3.4.21")
_EC_SHORT_RE = re.compile(
    r"\bEC[\s:]*(?P<a>[1-7])(?:\.(?P<b>\d+))?(?:\.(?P<c>\d+))?(?![\w.]*\d)", re.IGNORECASE
)


def normalize_ec(ec: str) -> str:
    """Write an EC number with four levels, '-' for the missing ones ("EC 1.2" -> "1.2.-.-")."""
    parts = [p.strip() for p in re.sub(r"^\s*EC[\s:]*", "", ec.strip(), flags=re.IGNORECASE).split(".")]
    parts = [p if p else "-" for p in parts][:4]
    parts += ["-"] * (4 - len(parts))
    # a level below a '-' is unknown too
    if "-" in parts:
        parts = parts[: parts.index("-")] + ["-"] * (4 - parts.index("-"))
    return ".".join(parts)


def parse_ec_numbers(answer: str, max_numbers: int | None = None) -> tuple[str, ...] | None:
    """The EC numbers in the answer, four levels each ("1.1.1.1", "1.2.-.-"), in order, or None."""
    found: list[tuple[int, str]] = []
    spans: list[tuple[int, int]] = []
    for m in _EC_FULL_RE.finditer(answer):
        found.append((m.start(), normalize_ec(".".join(m.group("a", "b", "c", "d")))))
        spans.append(m.span())
    for m in _EC_SHORT_RE.finditer(answer):
        if any(s <= m.start() < e for s, e in spans):
            continue
        found.append((m.start(), normalize_ec(".".join(g for g in m.group("a", "b", "c") if g))))
    ecs = tuple(dict.fromkeys(ec for _, ec in sorted(found)))
    if max_numbers is not None:
        ecs = ecs[:max_numbers]
    return ecs or UNPARSED


@dataclass(frozen=True)
class ECSpec:
    """An enzyme-function task whose answer names one or more EC numbers."""

    max_numbers: int | None = None

    def parse(self, answer: str) -> tuple[str, ...] | None:
        """The answer's EC numbers, or None."""
        return parse_ec_numbers(answer, self.max_numbers)


AnswerSpec = LabelSpec | RegressionSpec | ECSpec


def parse_answer(answer: str | None, spec: AnswerSpec) -> object:
    """Parse one answer with its task's spec; None when the answer cannot be read."""
    if answer is None:
        return UNPARSED
    return spec.parse(answer)
