"""audiolang's modules import each other without a cycle, and the cache folders live in a leaf module.

The graph is read from the source with `ast`, not by importing: a node per module (a package is its `__init__`), an
edge A -> B for every `import` / `from ... import` in A that names B or something defined in B, whether it runs at
import time (module level) or when a function is called (function level): a function-level import still makes A
need B, and is how a cycle hides until the day someone moves it up. Imports under `if TYPE_CHECKING:` never run and
do not count, and neither do dynamic imports (`importlib.import_module`, as the lazy top-level `audiolang` uses), which
`ast` cannot resolve. Importing a submodule also runs its parent packages' `__init__`, but Python runs those first by
design, so no edge is drawn to the parents.
"""

from __future__ import annotations

import ast
from pathlib import Path

import audiolang

PACKAGE_DIR = Path(audiolang.__file__).parent


def module_files() -> dict[str, tuple[Path, bool]]:
    """`{dotted module name: (file, is a package)}` for every module of the package."""
    modules = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def imported_modules(
    module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]
) -> set[str]:
    """The audiolang modules an import statement of `module` names: `from .x import y` names `x.y` where that is a
    module, else `x`."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in known}
    if node.level:
        package = module.split(".")[: None if is_package else -1]
        base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    targets = {f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names}
    return targets & known


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, outside `if TYPE_CHECKING:` blocks."""
    found = []
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.Import | ast.ImportFrom):
            found.append(child)
        elif _is_type_checking(child):
            found.extend(_imports(ast.Module(body=child.orelse, type_ignores=[])))
        else:
            found.extend(_imports(child))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    known = set(modules)
    graph = {}
    for module, (path, is_package) in modules.items():
        targets = set()
        for node in _imports(ast.parse(path.read_text(), filename=str(path))):
            targets |= imported_modules(module, is_package, node, known)
        graph[module] = targets - {module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted: every cycle lies in one."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(node: str) -> None:
        index[node] = lowlink[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                lowlink[node] = min(lowlink[node], lowlink[target])
            elif target in on_stack:
                lowlink[node] = min(lowlink[node], index[target])
        if lowlink[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_the_graph_reader_sees_relative_absolute_and_function_level_imports() -> None:
    known = {"audiolang", "audiolang.data", "audiolang.data.asr", "audiolang.conversion", "audiolang.cache"}
    source = """
from ..cache import cache_dir
from . import asr
import audiolang.conversion
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from ..conversion import resolve_pretrained
def load():
    from audiolang import conversion
"""
    found = set()
    for node in _imports(ast.parse(source)):
        found |= imported_modules("audiolang.data.corpus", False, node, known)
    assert found == {"audiolang.cache", "audiolang.data.asr", "audiolang.conversion"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    # The reader found the package's real edges (so an empty graph cannot pass).
    assert "audiolang.cache" in graph["audiolang.conversion.whisper"]
    assert "audiolang.conversion" in graph["audiolang.data.asr"]
    found = cycles(graph)
    edges = {f"{a} -> {b}" for component in found for a in component for b in graph[a] & set(component)}
    assert found == [], sorted(edges)


def test_the_cache_folders_share_one_root(monkeypatch, tmp_path: Path) -> None:
    from audiolang.cache import cache_dir
    from audiolang.conversion.whisper import whisper_cache_dir
    from audiolang.data.corpus import default_cache_dir

    monkeypatch.setenv("AUDIOLANG_CACHE", str(tmp_path / "root"))
    assert (default_cache_dir(), whisper_cache_dir()) == (
        tmp_path / "root" / "corpus",
        tmp_path / "root" / "whisper",
    )
    monkeypatch.delenv("AUDIOLANG_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir("corpus") == default_cache_dir() == tmp_path / "xdg" / "audiolang" / "corpus"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert whisper_cache_dir() == tmp_path / "home" / ".cache" / "audiolang" / "whisper"
