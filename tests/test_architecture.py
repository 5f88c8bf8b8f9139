"""The package's shape: no import cycle, each layer imports only the ones below it.

Read from the source (``ast``), as installed: ``app/`` is ``drainer``, ``consumers/``,
``db/`` and ``api/`` are ``drainer.consumers``, ``drainer.db`` and ``drainer.api``
(``pyproject.toml``). Imports under ``if TYPE_CHECKING:`` are left out: they never
run, and annotations may name what a layer only passes through.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The developer tools (benchmark, demo, embedded servers): a layer above the service.
DEVTOOLS = "drainer.devtools"


def _package_dirs() -> dict[str, Path]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping = pyproject["tool"]["setuptools"]["package-dir"]
    return {package: ROOT / directory for package, directory in mapping.items()}


def _modules() -> dict[str, Path]:
    dirs = _package_dirs()
    mapped = set(dirs.values())
    modules: dict[str, Path] = {}
    for package, directory in dirs.items():
        for path in sorted(directory.rglob("*.py")):
            if any(parent in mapped and parent != directory for parent in path.parents):
                continue  # a directory mapped to another package
            parts = list(path.relative_to(directory).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([package, *parts])] = path
    return modules


def _runtime_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    def walk(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                yield from (n for s in child.orelse for n in walk_one(s))
                continue
            yield from walk_one(child)

    def walk_one(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from walk(node)

    yield from walk(tree)


def import_graph() -> dict[str, set[str]]:
    """Each module of the package and the package modules it imports when it runs."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in _runtime_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level or not node.module or not node.module.startswith("drainer"):
                    continue
                for alias in node.names:
                    child = f"{node.module}.{alias.name}"
                    deps.add(child if child in modules else node.module)
            else:
                deps.update(a.name for a in node.names if a.name.startswith("drainer"))
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (as a path that returns to its start), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def layer_of(module: str) -> str:
    for layer in ("drainer.db", "drainer.consumers", "drainer.api", DEVTOOLS):
        if module == layer or module.startswith(layer + "."):
            return layer
    return "drainer"  # app/: settings, wiring, lifecycle, CLI, telemetry


#: What each layer may import besides itself.
ALLOWED = {
    "drainer.db": set(),
    "drainer.consumers": {"drainer.db"},
    # the API reads the app's settings, stores and telemetry, never its engine or wiring
    "drainer.api": {"drainer.consumers", "drainer.db", "drainer"},
    "drainer": {"drainer.api", "drainer.consumers", "drainer.db"},
    DEVTOOLS: {"drainer", "drainer.api", "drainer.consumers", "drainer.db"},
}
#: Modules of app/ the API must not import: the engine and the wiring around it.
ENGINE = {"drainer.lifecycle", "drainer.main", "drainer.cli", "drainer.server", "drainer"}


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 50, sorted(graph)  # the whole package was read
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = import_graph()
    graph["drainer.db.fence"] = graph["drainer.db.fence"] | {"drainer.db.executor"}
    assert find_cycle(graph) is not None


def test_each_layer_imports_only_the_layers_below_it() -> None:
    wrong = [
        f"{module} imports {dep}"
        for module, deps in import_graph().items()
        for dep in deps
        if layer_of(dep) != layer_of(module)
        and layer_of(dep) not in ALLOWED[layer_of(module)]
        # the CLI's commands load the developer tools (checked below)
        and not (module == "drainer.cli" and layer_of(dep) == DEVTOOLS)
    ]
    assert wrong == []


def test_the_api_knows_the_drainer_only_through_its_interface() -> None:
    wrong = [
        f"{module} imports {dep}"
        for module, deps in import_graph().items()
        if layer_of(module) == "drainer.api"
        for dep in deps
        if dep in ENGINE
    ]
    assert wrong == []


def test_no_service_module_imports_the_developer_tools() -> None:
    wrong = [
        f"{module} imports {dep}"
        for module, deps in import_graph().items()
        if layer_of(module) != DEVTOOLS and module != "drainer.cli"
        for dep in deps
        if layer_of(dep) == DEVTOOLS
    ]
    assert wrong == []


def test_the_cli_loads_the_developer_tools_only_inside_their_commands() -> None:
    tree = ast.parse(_modules()["drainer.cli"].read_text())
    top_level = [
        node.module
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(DEVTOOLS)
    ]
    assert top_level == []
    assert DEVTOOLS in {layer_of(dep) for dep in import_graph()["drainer.cli"]}


def test_db_knows_nothing_of_redis() -> None:
    modules = _modules()
    offenders = [
        name
        for name, path in modules.items()
        if layer_of(name) == "drainer.db"
        for node in _runtime_imports(ast.parse(path.read_text()))
        if any(
            (alias.name if isinstance(node, ast.Import) else node.module or "").startswith("redis")
            for alias in node.names
        )
    ]
    assert offenders == []


def test_every_package_directory_is_listed_for_the_wheel() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    found = {name for name, path in _modules().items() if path.name == "__init__.py"}
    assert found == listed
