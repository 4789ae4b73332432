"""Where models come from: the trained model shipped in the package, the default architecture's YAML, loading.

`load_model(model=None, config=None, device=None, dtype=None)` is what `SeqChat.load` and the command line use:
a trained model folder, else an untrained architecture built from a YAML, else the shipped model; then placed on
a device in a floating-point precision (`resolve_device`, `resolve_dtype`).
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

from seqchat.errors import SeqChatInputError
from seqchat.modeling.config import SeqChatConfig
from seqchat.modeling.devices import resolve_device, resolve_dtype
from seqchat.modeling.model import SeqChatForConditionalGeneration

log = logging.getLogger(__name__)
DEFAULT_CONFIG = "seqchat-small"  # the shipped model's folder and its architecture's YAML


def shipped_model_dir() -> Path | None:
    """The trained default model shipped inside the package, if this build has one."""
    d = Path(str(resources.files("seqchat"))) / "weights" / DEFAULT_CONFIG
    return d if (d / "config.json").exists() else None


def default_config_path() -> Path:
    """The YAML of the default architecture."""
    p = Path(str(resources.files("seqchat"))) / "configs" / "model" / f"{DEFAULT_CONFIG}.yaml"
    if p.exists():
        return p
    raise SeqChatInputError(f"cannot find the default config {DEFAULT_CONFIG}.yaml: pass --config")


def load_model(
    model: str | Path | None = None,
    config: str | Path | None = None,
    device: str | None = None,
    dtype: str | None = None,
) -> tuple[SeqChatForConditionalGeneration, Path | None]:
    """A trained model folder (default: the shipped model, unless `config` is given), or an untrained
    architecture built from `config`, on `device` in `dtype`; returns the model and the folder it was loaded from
    (None if built)."""
    dev, dt = resolve_device(device), resolve_dtype(dtype)  # bad names fail before minutes of loading
    loaded, folder = _load(model, config)
    return loaded.to(device=dev, dtype=dt).eval(), folder


def _load(
    model: str | Path | None, config: str | Path | None
) -> tuple[SeqChatForConditionalGeneration, Path | None]:
    folder = model if model is not None else (shipped_model_dir() if config is None else None)
    if folder is not None:
        return SeqChatForConditionalGeneration.from_pretrained(folder), Path(folder)
    cfg = SeqChatConfig.from_file(config or default_config_path())
    log.warning(
        "no trained model given; the encoders and projector are randomly initialised, so answers ignore the sequences"
    )
    return SeqChatForConditionalGeneration(cfg), None
