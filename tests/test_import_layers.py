"""The layout's rules, checked on the source: imports only point down, no file imports one that imports
it back, and no private name (``_x``, or a ``_module``) is imported from another folder."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# folder -> (import name, layer rank): kernels at the bottom; seqmamba and datasets beside; pipelines on top
FOLDERS = {"kernels": ("seqmamba.kernels", 0), "seqmamba": ("seqmamba", 1), "datasets": ("seqmamba.datasets", 1),
           "pipelines": ("seqmamba.pipelines", 2)}


def modules(root: Path) -> dict[str, tuple[Path, str]]:
    """import name -> (file, top folder), for every module of the four folders."""
    found = {}
    for folder, (package, _) in FOLDERS.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = [p for p in path.relative_to(root / folder).with_suffix("").parts if p != "__init__"]
            found[".".join([package, *parts])] = (path, folder)
    return found


def imports(path: Path, name: str, known: dict) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every import in ``path`` (functions included)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.append((full, None, node.lineno) if full in known else (base, alias.name, node.lineno))
    return out


def resolve(target: str, known: dict) -> str | None:
    while target and target not in known:
        target = target.rpartition(".")[0]
    return target or None


def graph(root: Path) -> tuple[dict[str, set[str]], list[str]]:
    """The file-level import graph and the rule breaks other than loops (upward and private imports)."""
    known = modules(root)
    edges: dict[str, set[str]] = {m: set() for m in known}
    problems = []
    for name, (path, folder) in known.items():
        for target, imported, line in imports(path, name, known):
            module = resolve(target, known)
            if module is None or module == name or module == "seqmamba":
                continue
            edges[name].add(module)
            other_path, other_folder = known[module]
            where = f"{path.relative_to(root)}:{line}"
            if FOLDERS[other_folder][1] > FOLDERS[folder][1] or (folder == "kernels" and other_folder != "kernels"):
                problems.append(f"{where}: {name} imports {module}, a layer above it")
            if other_path.parent != path.parent:
                private_module = any(part.startswith("_") and not part.startswith("__")
                                     for part in module.split("."))
                if private_module or (imported or "").startswith("_"):
                    what = f"{module}.{imported}" if imported else module
                    problems.append(f"{where}: {name} imports the private {what} from another folder")
    return edges, problems


def loops(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

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


def test_no_import_loops():
    edges, _ = graph(REPO)
    assert loops(edges) == []


def test_imports_point_down_and_keep_private_names_in_their_folder():
    _, problems = graph(REPO)
    assert problems == []


@pytest.fixture()
def planted(tmp_path: Path) -> Path:
    """A tiny tree of the four folders with one loop, one upward import and one private import."""
    for folder in FOLDERS:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "seqmamba" / "a.py").write_text("from .b import thing\n")
    (tmp_path / "seqmamba" / "b.py").write_text("def thing():\n    from . import a\n")
    (tmp_path / "kernels" / "k.py").write_text("from ..a import thing\n")  # kernels -> seqmamba: upward
    (tmp_path / "kernels" / "_private.py").write_text("X = 1\n")
    (tmp_path / "pipelines" / "p.py").write_text("from ..kernels._private import X\n")
    return tmp_path


def test_the_checks_catch_a_planted_loop_and_bad_imports(planted: Path):
    edges, problems = graph(planted)
    assert loops(edges) == [["seqmamba.a", "seqmamba.b"]]
    assert any("kernels/k.py:1" in p and "a layer above" in p for p in problems)
    assert any("pipelines/p.py:1" in p and "private seqmamba.kernels._private" in p for p in problems)
