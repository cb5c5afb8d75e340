"""The import graph of ``vidcolor`` (with ``vidcolor.pipelines`` = ``pipelines/`` and ``vidcolor.training``
= ``training/``): no cycles, counting the imports inside functions, and no module using another
module's ``_private`` names. Read from the source with ``ast``: nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

# Where each package of the installed layout lives in the repository (pyproject's package-dir).
ROOTS = {"vidcolor": REPO / "vidcolor", "vidcolor.pipelines": REPO / "pipelines", "vidcolor.training": REPO / "training"}

# Private names other modules may import (none).
ALLOWED_PRIVATE: set[tuple[str, str, str]] = set()
# Imports allowed to close a cycle (none).
ALLOWED_CYCLE_EDGES: set[tuple[str, str]] = set()


def modules() -> dict[str, Path]:
    """Module name -> source file, for every module of the three roots."""
    found: dict[str, Path] = {}
    for package, root in ROOTS.items():
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Whether ``node`` sits in an ``if TYPE_CHECKING:`` block (never runs)."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, str | None, int]]:
    """(module imported, name taken from it or None, line) for every import in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[str, str | None, int]] = []
    for node in ast.walk(tree):
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            out.extend((alias.name, None, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.append((sub, None, node.lineno) if sub in known else (base, alias.name, node.lineno))
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    edges: dict[str, set[str]] = {m: set() for m in known}
    for name, path in known.items():
        for target, _, _ in imports(name, path, known):
            while target and target not in known:  # ``import vidcolor.flow.raft`` of a package's name
                target = target.rpartition(".")[0]
            if target and target != name:
                edges[name].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_function_level_imports():
    edges = graph()
    assert "vidcolor.pipelines.run" in edges["vidcolor.cli.run"]  # imported inside the command
    assert "vidcolor.styles" in edges["vidcolor.settings"]


def test_cycle_detection_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    edges = graph()
    for a, b in ALLOWED_CYCLE_EDGES:
        edges[a].discard(b)
    assert cycles(edges) == []


def test_no_module_imports_another_modules_private_names():
    known = modules()
    found = set()
    for name, path in known.items():
        for target, taken, line in imports(name, path, known):
            if not target.startswith("vidcolor") or target == name:
                continue
            private = [p for p in target.split(".") if p.startswith("_") and not p.startswith("__")]
            if (taken and taken.startswith("_") and not taken.startswith("__")) or private:
                found.add((name, target, taken or ""))
        # ``module._name`` on a module imported whole
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                aliases.update({(a.asname or a.name): a.name for a in node.names if a.name in known})
            elif isinstance(node, ast.ImportFrom) and node.module:
                aliases.update({(a.asname or a.name): f"{node.module}.{a.name}" for a in node.names
                                if f"{node.module}.{a.name}" in known})
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")
                    and aliases[node.value.id] != name):
                found.add((name, aliases[node.value.id], node.attr))
    assert found - ALLOWED_PRIVATE == set()


def test_no_module_is_over_400_lines():
    """Modules stay focused (../shared/STYLE.md): a file past 400 lines holds more than one job."""
    long = {str(path.relative_to(REPO)): n for path in modules().values()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > 400}
    assert not long, f"split these along their seams: {long}"
