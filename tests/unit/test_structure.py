"""The package's shape: imports go one way, no module reaches into another's private names,
functions stay short. Read from the source with `ast`, function-local imports included (a
cycle hidden inside a function is still a cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "alrun"
MAX_LINES = 60
# Functions allowed over MAX_LINES, each with the reason (keep this list short).
LONG_OK: dict[str, str] = {
    # the routes' small handlers, closures over one annotator
    "alrun.web.app.build_app": "a table of routes and their handlers",
}


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """(imported alrun module, names taken from it) for every import statement in `path`."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith("alrun")]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            if not module.startswith("alrun"):
                continue
            for a in node.names:  # `from alrun.models import crf` imports the submodule
                sub = f"{module}.{a.name}"
                found.append((sub, []) if sub in known else (module, [a.name]))
    return found


def graph() -> tuple[dict[str, set[str]], list[str]]:
    known = modules()
    edges: dict[str, set[str]] = {m: set() for m in known}
    private = []
    for name, path in known.items():
        for target, names in imports(name, path, known):
            while target not in known:  # a name inside a module, e.g. alrun.models.MODELS
                target = target.rpartition(".")[0]
            if target != name:
                edges[name].add(target)
            private += [
                f"{name} imports {target}.{n}"
                for n in names
                if n.startswith("_") and n != "__version__"
            ]
    return edges, private


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_checker_finds_a_cycle_and_a_private_import():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_inside_alrun():
    edges, _ = graph()
    assert "alrun.models.crf" in edges["alrun.models"]  # the walk sees real imports
    assert cycles(edges) == []


def test_no_module_imports_another_modules_private_name():
    _, private = graph()
    assert private == []


def test_functions_stay_short():
    long = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                where = f"{name}.{node.name}"
                if n > MAX_LINES and where not in LONG_OK:
                    long.append(f"{where} ({n} lines)")
    assert long == [], "split these, or list them in LONG_OK with the reason"
