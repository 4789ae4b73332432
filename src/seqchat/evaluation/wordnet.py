"""WordNet for METEOR's synonym stage, built offline from Debian's `wordnet-base` package.

No NLTK data hub is reachable from the project's machines, so `nltk.download("wordnet")` cannot
work. Debian's `wordnet-base` installs the WordNet 3.0 database files in /usr/share/wordnet;
NLTK's reader wants them in an `nltk_data/corpora/wordnet` folder together with a `lexnames`
file that Debian does not ship (it documents it in lexnames(5WN) instead). `prepare_wordnet`
copies the files into such a folder and writes `lexnames`; `load_wordnet` returns a reader or
None when no WordNet can be had, and METEOR then falls back to exact + stem matching.

Run `python -m seqchat.evaluation.wordnet` (scripts/install.sh does) to prepare it once.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import warnings
from pathlib import Path

DEBIAN_WORDNET_DIR = Path("/usr/share/wordnet")

# The database files NLTK's WordNetCorpusReader opens (index.sense is optional and only used
# for sense-key look-ups, which METEOR never does).
_DB_FILES = (
    "cntlist.rev",
    "index.adj",
    "index.adv",
    "index.noun",
    "index.verb",
    "data.adj",
    "data.adv",
    "data.noun",
    "data.verb",
    "adj.exc",
    "adv.exc",
    "noun.exc",
    "verb.exc",
)

# WordNet 3.0 lexicographer files, numbered as in lexnames(5WN); the digit is the part of
# speech (1 noun, 2 verb, 3 adjective, 4 adverb), the third column NLTK expects.
_LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
    "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)  # fmt: skip
_POS_NUMBER = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


def _default_target() -> Path:
    """The interpreter's own nltk_data folder (inside the venv), which NLTK searches by default."""
    return Path(sys.prefix) / "nltk_data" / "corpora" / "wordnet"


def lexnames_text() -> str:
    """The `lexnames` file NLTK needs, one `NN<TAB>name<TAB>pos` line per lexicographer file."""
    return "".join(
        f"{i:02d}\t{name}\t{_POS_NUMBER[name.split('.')[0]]}\n" for i, name in enumerate(_LEXNAMES)
    )


def prepare_wordnet(
    source: str | os.PathLike = DEBIAN_WORDNET_DIR, target: str | os.PathLike | None = None
) -> Path:
    """Build an NLTK-layout WordNet folder from Debian's files; idempotent, returns the folder."""
    src = Path(source)
    dst = Path(target) if target is not None else _default_target()
    missing = [f for f in _DB_FILES if not (src / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"WordNet files {missing} not found in {src}: "
            "run `apt-get install -y wordnet-base` (scripts/install.sh does)"
        )
    dst.mkdir(parents=True, exist_ok=True)
    for name in _DB_FILES:
        s, d = src / name, dst / name
        # copies, not links: NLTK's path guard refuses links that leave its data roots
        if not d.exists() or d.stat().st_size != s.stat().st_size:
            shutil.copyfile(s, d)
    (dst / "lexnames").write_text(lexnames_text(), encoding="utf-8")
    return dst


def _reader(folder: Path):
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class EnglishWordNet(WordNetCorpusReader):
        """WordNet without the multilingual (OMW) synset mapping, which needs index.sense."""

        def map_wn(self, version: str = "wordnet") -> None:
            # only Open Multilingual Wordnet look-ups use this map; METEOR needs English synsets
            return None

    # NLTK only opens corpus files under its data roots (nltk.data.path)
    root = str(folder.parent.parent)
    if root not in nltk.data.path:
        nltk.data.path.append(root)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The multilingual functions")
        return EnglishWordNet(str(folder), None)


@functools.lru_cache(maxsize=1)
def load_wordnet():
    """Return a WordNet reader (prepared folder, else built from Debian's files), or None if there is none."""
    candidates = [_default_target(), Path.home() / "nltk_data" / "corpora" / "wordnet"]
    for folder in candidates:
        if (folder / "lexnames").is_file() and (folder / "data.noun").is_file():
            return _reader(folder)
    if not DEBIAN_WORDNET_DIR.is_dir():
        return None
    for folder in candidates:
        try:
            return _reader(prepare_wordnet(DEBIAN_WORDNET_DIR, folder))
        except OSError:
            continue
    return None


def main() -> int:
    """Prepare WordNet for METEOR; exit 1 with a message when Debian's files are missing."""
    try:
        folder = prepare_wordnet()
    except (FileNotFoundError, OSError) as exc:
        print(f"WordNet not prepared: {exc}", file=sys.stderr)
        return 1
    wn = _reader(folder)
    print(f"WordNet {wn.get_version()} ready for METEOR in {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
