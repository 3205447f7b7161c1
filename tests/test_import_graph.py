"""The package's import graph: no circle anywhere, and the layers import only what they may.

The graph is module to module over every import statement in ``src/cnnlab``, those inside
functions included (moving an import into a function does not break a circle); imports under
``if TYPE_CHECKING:`` are left out, as they never run. ``from cnnlab.x import name`` is an edge
to the module ``cnnlab.x.name`` when that is a module, else to ``cnnlab.x`` itself.
"""

import ast
from pathlib import Path

import cnnlab

ROOT = Path(cnnlab.__file__).parent


def module_names() -> dict[str, Path]:
    names = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the import nodes inside ``if TYPE_CHECKING:`` blocks."""
    skipped = set()
    for node in ast.walk(tree):
        test = getattr(node, "test", None)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(test):
            skipped |= {id(n) for part in node.body for n in ast.walk(part)}
    return skipped


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text())
    skipped = _type_checking_only(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # a relative import: from the package this module is in
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.add(target if target in modules else base)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of the graph as [a, b, ..., a], or None (depth-first, colouring nodes)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_graph_finds_a_planted_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_imports_inside_functions_and_from_imports_are_edges(tmp_path):
    source = "def f():\n    from cnnlab.viz import masks\n    from cnnlab.errors import UserError\n"
    path = tmp_path / "m.py"
    path.write_text(source)
    modules = {"cnnlab.viz": None, "cnnlab.viz.masks": None, "cnnlab.errors": None, "m": None}
    assert imports_of("m", path, modules) == {"cnnlab.viz.masks", "cnnlab.errors"}


def test_no_import_circle_in_the_package():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_nothing_outside_cli_imports_cli():
    offenders = [
        f"{name} imports {target}"
        for name, targets in import_graph().items()
        if not name.startswith("cnnlab.cli")
        for target in targets
        if target == "cnnlab.cli" or target.startswith("cnnlab.cli.")
    ]
    assert not offenders


def test_textbook_packages_stand_alone():
    """nn/ and optim/ import nothing of cnnlab's but each other and the error type."""
    allowed = ("cnnlab.nn", "cnnlab.optim", "cnnlab.errors")
    offenders = [
        f"{name} imports {target}"
        for name, targets in import_graph().items()
        if name.startswith(("cnnlab.nn", "cnnlab.optim"))
        for target in targets
        if not (target in allowed or target.startswith(tuple(a + "." for a in allowed)))
    ]
    assert not offenders


def test_only_the_factory_calls_instantiate():
    callers = []
    for name, path in module_names().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "hydra.utils":
                if any(a.name == "instantiate" for a in node.names):
                    callers.append(name)
    assert callers == ["cnnlab.factory.build"]
