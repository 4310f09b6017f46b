"""No import circle in lle/: a module never imports, directly or through others, a module that imports it back.

Every ``import`` statement counts: module-level ones, those under ``if TYPE_CHECKING:`` and those inside functions.
A function-level import still ties two modules together (neither can be understood, moved or tested without the
other); it only hides the circle from the interpreter. The fix is to move the shared piece one level down.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "lle"

_KNOWN: list[frozenset[str]] = []  # no circle is tolerated


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The lle modules ``name`` imports anywhere in its source (``from a.b import c`` -> ``a.b.c`` or ``a.b``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = package
                for _ in range(node.level - 1):
                    pkg = pkg.rpartition(".")[0]
                base = f"{pkg}.{base}" if base else pkg
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(frozenset(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_the_walker_sees_function_level_and_type_checking_imports() -> None:
    graph = _graph()
    assert "lle.models.checkpoint" in graph["lle.backends.torch_backend"]  # inside load()
    assert "lle.export.trt_meta" in graph["lle.backends.trt_backend"]  # under TYPE_CHECKING and inside _run()
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]


def test_no_import_circle_in_lle() -> None:
    graph = _graph()
    cycles = [c for c in _cycles(graph) if c not in _KNOWN]
    lines = [" <-> ".join(sorted(c)) + ": " + "; ".join(
        f"{a} imports {b}" for a in sorted(c) for b in sorted(graph[a] & c)) for c in cycles]  # fmt: skip
    assert not cycles, "import circles (move the shared piece one level down):\n" + "\n".join(lines)
