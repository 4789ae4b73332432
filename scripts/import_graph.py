"""Draw seqchat's import graph from the source and report what breaks the layering.

Reads every module under src/seqchat with `ast` (nothing is imported) and reports:

- circles: groups of files that import each other, directly or through others;
- upward imports: a module importing one in a higher layer
  (base < modeling < tasks < data < {training, evaluation, serving} < cli);
- function-local imports of seqchat modules without a one-line `# start-up: <why>` comment on the import's
  line or the line above it (the only accepted reason to hide an import inside a function).

`python scripts/import_graph.py` prints the figures and every finding, and exits 1 when there is any.
`--summary` prints the figures only.
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "seqchat"

# layer rank of each top-level package; modules straight under seqchat/ are "base" unless named here
LAYERS: dict[str, int] = {
    "base": 0,
    "modeling": 1,
    "tasks": 2,
    "data": 3,
    "training": 4,
    "evaluation": 4,
    "serving": 4,
    "cli": 5,
}
# modules that sit outside the folder of their layer: seqchat.__init__ is the package's facade (it may
# re-export from any layer, but only light modules); errors is the one module every layer may use
PLACED: dict[str, str] = {
    "seqchat": "base",
    "seqchat.errors": "base",
    "seqchat.__main__": "cli",
}
START_UP = "# start-up:"


@dataclass
class Graph:
    modules: dict[str, Path] = field(default_factory=dict)
    edges: dict[str, set[str]] = field(default_factory=dict)  # importer -> imported modules
    lines: dict[tuple[str, str], int] = field(default_factory=dict)  # (importer, imported) -> first line
    local: list[tuple[str, int, str]] = field(default_factory=list)  # uncommented function-local imports
    local_total: int = 0


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> str:
    if module in PLACED:
        return PLACED[module]
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in LAYERS:
        return parts[1]
    return "base"


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module file an import name lands in: the longest known prefix of the dotted name."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imported_names(node: ast.Import | ast.ImportFrom, modules: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif node.level or not node.module:
        return []
    else:  # `from seqchat.data import build` lands in seqchat.data.build when that is a module
        names = [f"{node.module}.{a.name}" for a in node.names]
    found = []
    for n in names:
        if n.split(".")[0] != PACKAGE:
            continue
        target = resolve(n, modules)
        if target is not None:
            found.append(target)
    return found


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def walk(graph: Graph, module: str, source: str) -> None:
    lines = source.splitlines()
    tree = ast.parse(source)

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and is_type_checking(child):
                continue  # annotations only: no run-time arrow
            if isinstance(child, ast.Import | ast.ImportFrom):
                targets = [t for t in imported_names(child, graph.modules) if t != module]
                for t in targets:
                    graph.edges.setdefault(module, set()).add(t)
                    graph.lines.setdefault((module, t), child.lineno)
                if targets and in_function:
                    graph.local_total += 1
                    here = lines[child.lineno - 1]
                    above = lines[child.lineno - 2] if child.lineno >= 2 else ""
                    if START_UP not in here and START_UP not in above:
                        graph.local.append((module, child.lineno, ", ".join(sorted(set(targets)))))
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            visit(child, inner)

    visit(tree, False)


def build_graph(root: Path = ROOT) -> Graph:
    graph = Graph()
    for path in sorted((root / PACKAGE).rglob("*.py")):
        graph.modules[module_name(path, root)] = path
    for module, path in graph.modules.items():
        walk(graph, module, path.read_text())
    return graph


def circles(graph: Graph) -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan), the package facade left out."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def targets(m: str) -> list[str]:
        return sorted(t for t in graph.edges.get(m, ()) if t != PACKAGE)

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in targets(v):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for m in sorted(graph.modules):
        if m != PACKAGE and m not in index:
            strong(m)
    return sorted(found)


def upward(graph: Graph) -> list[tuple[str, str, int]]:
    found = []
    for src, targets in sorted(graph.edges.items()):
        for t in sorted(targets):
            if LAYERS[layer(src)] < LAYERS[layer(t)] and src != PACKAGE:
                found.append((src, t, graph.lines[(src, t)]))
    return found


def report(graph: Graph, summary: bool = False) -> int:
    """Print the figures (and, unless `summary`, every finding); the number of findings."""
    arrows = sum(len(v) for v in graph.edges.values())
    circ, up = circles(graph), upward(graph)
    print(
        f"modules {len(graph.modules)}, arrows {arrows}, circles {len(circ)}, upward imports {len(up)}, "
        f"function-local imports {graph.local_total} ({len(graph.local)} without a '{START_UP}' comment)"
    )
    if not summary:
        for group in circ:
            print("circle:", " <-> ".join(group))
        for src, t, line in up:
            print(f"upward: {src}:{line} ({layer(src)}) -> {t} ({layer(t)})")
        for module, line, targets in graph.local:
            print(f"local: {module}:{line} -> {targets}")
    return len(circ) + len(up) + len(graph.local)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", action="store_true", help="the figures only")
    args = parser.parse_args(argv)
    return 1 if report(build_graph(), summary=args.summary) else 0


if __name__ == "__main__":
    sys.exit(main())
