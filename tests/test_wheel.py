"""Installed from a wheel (not editable, not the source tree), seqchat finds its configs and shipped model.

The wheel is built without its dependencies and installed into a fresh virtual environment that sees this
environment's site-packages (torch, transformers, ...) through a .pth line, so nothing is downloaded; the
converted decoder comes from the same cache (SEQCHAT_CACHE or ~/.cache/seqchat, filled by scripts/install.sh).
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
QUESTION = "Is there a promoter in @lacZ_upstream?"


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory) -> tuple[Path, dict[str, str], Path]:
    """A fresh venv with the seqchat wheel installed; its python, environment and a working folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    # the wheel, from a copy of the tracked tree (a build never writes into the checkout)
    src = tmp / "src"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_bytes((ROOT / rel).read_bytes())
    dist = tmp / "dist"
    build = ["wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)]
    _run([sys.executable, "-m", "pip", *build], tmp, env)
    wheel = next(dist.glob("seqchat-*.whl"))
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp, env)
    python = venv / "bin" / "python"
    ask_purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = Path(_run([str(python), "-c", ask_purelib], tmp, env).stdout.strip())
    # this environment's packages (torch, transformers, ...) without its seqchat: a plain path line does
    # not run the editable install's hooks, and the wheel's own seqchat comes first on sys.path
    deps = [p for p in {sysconfig.get_path("purelib"), *site.getsitepackages()} if Path(p).is_dir()]
    (purelib / "zz_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    install = ["--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)]
    _run([sys.executable, "-m", "pip", *install], tmp, env)
    work = tmp / "work"
    work.mkdir()
    return venv, env, work


def test_wheel_install_finds_configs_and_the_shipped_model(wheel_env):
    venv, env, work = wheel_env
    python = venv / "bin" / "python"
    probe = ("import seqchat, seqchat.modeling.hub as h; print(seqchat.__file__); "
             "print(h.default_config_path()); print(h.shipped_model_dir())")  # fmt: skip
    where, config, shipped = _run([str(python), "-c", probe], work, env).stdout.split()
    assert Path(where).is_relative_to(venv), where  # the wheel's copy, not the source tree
    assert Path(config).is_relative_to(venv) and Path(config).name == "seqchat-small.yaml"
    assert Path(shipped).is_relative_to(venv) and (Path(shipped) / "config.json").is_file()
    fasta = work / "example.fa"
    fasta.write_bytes((ROOT / "docs" / "examples" / "example.fa").read_bytes())
    ask = ["ask", QUESTION, "--fasta", str(fasta), "--max-new-tokens", "8"]
    proc = _run([str(venv / "bin" / "seqchat"), *ask], work, env)
    assert proc.stdout.strip()
