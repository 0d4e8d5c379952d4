"""The package's shape: the two graphs and the two memories in their folders, imports that only go down,
one reader of the environment, and a package docstring that maps every public name.

Before: 34 flat modules; judge.py and migration.py imported each other; nothing kept alignment and
judging apart.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import memalign_graph

PACKAGE = Path(memalign_graph.__file__).parent
MAX_LINES = 400  # one job a module; past ~300 lines a module should show why it is still one


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(path: Path, known: set[str]) -> set[str]:
    """Every package module a module imports, at the top or inside a function (lazy imports count)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        found |= {name for name in names if name in known}
    return found


GRAPH = {name: imports(path, set(modules())) - {name} for name, path in modules().items()}


def reaches(start: str, target_prefix: str) -> list[str]:
    """An import path from `start` to a module under `target_prefix`, or []."""
    seen, stack = set(), [[start]]
    while stack:
        path = stack.pop()
        for name in GRAPH[path[-1]]:
            if name.startswith(target_prefix):
                return [*path, name]
            if name not in seen:
                seen.add(name)
                stack.append([*path, name])
    return []


def test_no_import_cycle_anywhere() -> None:
    assert not [name for name in GRAPH if name in reaches_all(name)]


def reaches_all(start: str) -> set[str]:
    seen, stack = set(), [start]
    while stack:
        for name in GRAPH[stack.pop()]:
            if name not in seen:
                seen.add(name)
                stack.append(name)
    return seen


def test_the_two_graphs_never_import_each_other() -> None:
    for module in GRAPH:
        if module.startswith("memalign_graph.alignment"):
            assert not reaches(module, "memalign_graph.judging"), reaches(module, "memalign_graph.judging")
        if module.startswith("memalign_graph.judging"):
            assert not reaches(module, "memalign_graph.alignment"), reaches(module, "memalign_graph.alignment")


def test_the_memories_sit_below_the_graphs_and_the_facade() -> None:
    above = ("alignment", "judging", "feedback_graph", "judge", "serving", "bulk", "config", "cli", "evaluation")
    for module in (name for name in GRAPH if name.startswith("memalign_graph.memory")):
        for layer in above:
            assert not reaches(module, f"memalign_graph.{layer}"), reaches(module, f"memalign_graph.{layer}")


def test_the_shared_records_depend_on_nothing_above_them() -> None:
    bottom = ("errors", "feedback", "spec", "records", "context", "prompts", "rendering", "model_calls")
    allowed = {f"memalign_graph.{name}" for name in bottom}
    for name in bottom:
        assert reaches_all(f"memalign_graph.{name}") <= allowed, name


def test_no_module_is_too_long_to_have_one_job() -> None:
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long


def test_only_config_reads_memalign_variables() -> None:
    readers = [
        name
        for name, path in modules().items()
        if name != "memalign_graph.config" and re.search(r"(environ|getenv)\b[^\n]*MEMALIGN_", path.read_text())
    ]
    assert not readers


def test_the_package_docstring_maps_every_public_name() -> None:
    documented = set(re.findall(r"^    ([A-Za-z_]\w*)\s", memalign_graph.__doc__ or "", re.MULTILINE))
    assert set(memalign_graph.__all__) <= documented, set(memalign_graph.__all__) - documented
    assert (PACKAGE / "py.typed").is_file()
