"""The package's layers, read from its import statements: data flows one way, nothing imports
in a circle, and no stage reaches into another's private names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "{{ cookiecutter.package_name }}"
SOURCE = Path(__file__).resolve().parents[1] / "src" / PACKAGE
# Base modules (layer 0) then the stages in the order data flows; the CLI and the conventions
# check sit on top. A module may import its own layer and the layers below it. `families` is a
# base module: configuration checks `train.model_family` against it, `scoring` compiles with it
# and `train` fits with it.
LAYERS = {
    "backends": 0,
    "config": 0,
    "errors": 0,
    "exit_codes": 0,
    "families": 0,
    "files": 0,
    "metrics": 0,
    "predictions": 0,
    "redaction": 0,
    "store": 0,
    "data": 1,
    "features": 2,
    "scoring": 2,
    "train": 3,
    "promote": 4,
    "serve": 5,
    "monitor": 6,
    "loop": 7,
    "report": 7,
    "cli": 8,
    "conventions": 8,
    "__main__": 8,
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _imports(path: Path, *, top_level_only: bool) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for each import of the package's own modules."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = _module_name(path)
    package = module if _is_package(path) else module.rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                found.append((target, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith(PACKAGE + ".")]
    return found


def _submodule_or_name(target: str, name: str, modules: set[str]) -> str | None:
    candidate = f"{target}.{name}"
    return candidate if candidate in modules else None


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1]] if len(parts) > 1 else 0


FILES = sorted(SOURCE.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    assert {path.relative_to(SOURCE).parts[0].removesuffix(".py") for path in FILES} == {
        *LAYERS,
        "__init__",
    }


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SOURCE)))
def test_data_flows_one_way(path: Path) -> None:
    module = _module_name(path)
    for target, _ in _imports(path, top_level_only=False):
        if target != PACKAGE:
            assert _layer(target) <= _layer(module), f"{module} imports {target}, a later stage"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SOURCE)))
def test_no_stage_imports_another_stages_private_names(path: Path) -> None:
    module = _module_name(path)
    stage = module.split(".")[:2]
    for target, names in _imports(path, top_level_only=False):
        if target.split(".")[:2] != stage:
            private = [name for name in names if name.startswith("_")]
            assert not private, f"{module} imports private {private} from {target}"
            assert not any(part.startswith("_") for part in target.split(".")[1:]), target


def test_nothing_imports_in_a_circle() -> None:
    modules = {_module_name(path) for path in FILES}
    graph: dict[str, set[str]] = {}
    for path in FILES:
        module = _module_name(path)
        edges = graph.setdefault(module, set())
        for target, names in _imports(path, top_level_only=True):
            parts = target.split(".")
            # Importing a.b.c runs a.b's __init__ first (but a module's own package is running).
            edges |= {
                ".".join(parts[:i])
                for i in range(2, len(parts) + 1)
                if not module.startswith(".".join(parts[:i]) + ".")
            }
            edges |= {m for n in names if (m := _submodule_or_name(target, n, modules))}
        edges.discard(module)

    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> None:
        if node in done:
            return
        assert node not in visiting, " -> ".join([*visiting[visiting.index(node) :], node])
        visiting.append(node)
        for neighbour in sorted(graph.get(node, ())):
            visit(neighbour)
        visiting.pop()
        done.add(node)

    for module in sorted(graph):
        visit(module)
