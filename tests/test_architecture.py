"""The layout rules of the package, checked on its source (so a change that breaks one fails).

- no import cycle among nmf4d's modules (module-level imports);
- no module outside a package imports that package's underscore modules;
- no module over 600 lines, and every module opens with a docstring saying what it owns;
- ``analyse`` stays a short list of stages: at most 60 lines and 6 parameters.
"""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import nmf4d
from nmf4d.pipeline import analyse

SRC = Path(nmf4d.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(module: str, level: int, name: str | None, is_package: bool) -> str:
    if level == 0:
        return name or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _imports(module: str, path: Path, *, top_level_only: bool = True) -> set[str]:
    """nmf4d modules imported by ``module`` (module-level statements only by default)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node.level, node.module, is_pkg)
            subs = {f"{target}.{a.name}" for a in node.names}
            if subs <= set(MODULES):                 # "from . import x" of modules only
                found |= subs
            else:
                found.add(target)
    return {m for m in found if m in MODULES and m != module}


def test_no_import_cycle():
    graph = {m: _imports(m, p) for m, p in MODULES.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = stack[stack.index(n):] + [n]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2
    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_no_private_module_imported_from_outside_its_package():
    bad = []
    for m, p in MODULES.items():
        for target in _imports(m, p, top_level_only=False):
            parts = target.split(".")
            private = [i for i, part in enumerate(parts) if part.startswith("_")
                       and part != "__init__"]
            if not private:
                continue
            package = ".".join(parts[:private[0]])
            if not (m == package or m.startswith(package + ".")):
                bad.append(f"{m} imports {target}")
    assert not bad, bad


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_size_and_docstring(module):
    path = MODULES[module]
    text = path.read_text()
    assert len(text.splitlines()) <= 600, f"{module}: {len(text.splitlines())} lines"
    if path.name == "_version.py":
        return
    doc = ast.get_docstring(ast.parse(text))
    assert doc and len(doc) > 20, f"{module} has no docstring saying what it owns"


def test_analyse_is_a_short_list_of_stages():
    src, _ = inspect.getsourcelines(analyse)
    params = inspect.signature(analyse).parameters
    body = [line for line in src if line.strip()]
    doc = ast.get_docstring(ast.parse("".join(src).strip()).body[0]) or ""
    code_lines = len(body) - len(doc.splitlines())
    assert code_lines <= 60, f"analyse has {code_lines} lines"
    assert len(params) <= 6
    assert list(params)[:2] == ["data", "config"]
    assert all(p.kind is p.KEYWORD_ONLY for p in list(params.values())[2:])
