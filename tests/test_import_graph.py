"""scripts/import_graph.py finds no circle, no upward import and no uncommented function-local import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "import_graph.py"


def test_import_graph_is_clean():
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "circles 0, upward imports 0" in proc.stdout


def test_import_graph_sees_a_circle_and_an_upward_import(tmp_path):
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import import_graph as g
    finally:
        sys.path.remove(str(SCRIPT.parent))
    pkg = tmp_path / "seqchat"
    for sub in ("modeling", "tasks"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "modeling" / "a.py").write_text("from seqchat.tasks import b\n")
    (pkg / "tasks" / "b.py").write_text("def f():\n    from seqchat.modeling import a\n")
    graph = g.build_graph(tmp_path)
    assert g.circles(graph) == [["seqchat.modeling.a", "seqchat.tasks.b"]]
    assert [(s, t) for s, t, _ in g.upward(graph)] == [("seqchat.modeling.a", "seqchat.tasks.b")]
    assert [(m, line) for m, line, _ in graph.local] == [("seqchat.tasks.b", 2)]
