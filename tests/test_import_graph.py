"""The package's import graph: no cycles (deferred imports inside functions included) and every
import points down the layers that docs/architecture.md draws."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "dormsig"

#: docs/architecture.md, "Dependencies point one way"; a module may import its own layer or lower ones.
LAYERS: list[tuple[str, ...]] = [
    ("dormsig._version", "dormsig.errors", "dormsig._stats", "dormsig._keys", "dormsig._paths", "dormsig._interrupt"),
    ("dormsig.provenance",),
    ("dormsig._normalise", "dormsig.io", "dormsig.genes", "dormsig.data"),
    ("dormsig.pp", "dormsig.signatures"),
    ("dormsig.get",),  # reads results back: below the rooms that write them, which also read through it
    ("dormsig.tl", "dormsig.de"),
    ("dormsig.pl",),
    ("dormsig.report", "dormsig.verify"),
    ("dormsig.plan",),
    ("dormsig.pipeline",),
    ("dormsig.cli_types", "dormsig.cli"),
    ("dormsig",),
]


def _modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        parts = list(f.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _edges(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its body (functions included)."""
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, file in mods.items():
        pkg = name if file.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                hits = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods]
                targets = hits or [target]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in mods and t != name)
    return graph


def _layer(module: str) -> int:
    best = None
    for i, layer in enumerate(LAYERS):
        for prefix in layer:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (i, len(prefix))
    assert best is not None, f"{module} is in no layer; add it to LAYERS (and docs/architecture.md)"
    return best[0]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    assert _cycles(_edges(_modules())) == []


def test_imports_point_down_the_layers() -> None:
    graph = _edges(_modules())
    upward = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                    if _layer(b) > _layer(a) and not (a == "dormsig" or b == "dormsig"))
    assert upward == []


@pytest.mark.parametrize(("graph", "expected"), [
    ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
])
def test_cycle_finder_finds_cycles(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert _cycles(graph) == expected
