"""The layout's rules, checked on the source: the core imports no app, training has no import cycle (not even
through imports inside functions), the registry knows no models and needs no Keras, and the main window stays
small."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cifar10", "cifar10_cli", "desktop_app", "web", "training")


def _imports(nodes) -> set[str]:
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] in PACKAGES}


def module_imports(path: Path) -> set[str]:
    """Project modules imported at module level (imports inside functions are lazy, on purpose)."""
    return _imports(ast.parse(path.read_text(encoding="utf-8")).body)


def every_import(path: Path) -> set[str]:
    """Project modules imported anywhere in the file: at module level and inside functions (lazy imports
    hide a cycle from Python, not from the reader)."""
    return _imports(ast.walk(ast.parse(path.read_text(encoding="utf-8"))))


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (module -> modules it imports) as a path ``[a, b, ..., a]``, or None."""
    done: set[str] = set()

    def visit(node: str, stack: list[str]) -> list[str] | None:
        if node in stack:
            return [*stack[stack.index(node):], node]
        if node in done:
            return None
        for nxt in sorted(graph[node]):
            cycle = visit(nxt, [*stack, node])
            if cycle:
                return cycle
        done.add(node)
        return None

    return next((cycle for name in sorted(graph) if (cycle := visit(name, []))), None)


def modules_of(package: str) -> dict[str, Path]:
    return {f"{package}.{p.stem}": p for p in sorted((ROOT / package).glob("*.py")) if p.stem != "__init__"}


def test_core_imports_no_app_training_or_cli():
    for name, path in modules_of("cifar10").items():
        outside = {m for m in module_imports(path) if not m.startswith("cifar10.") and m != "cifar10"}
        assert not outside, f"{name} imports {sorted(outside)}: the core must not depend on an app"
    for package in ("desktop_app", "web", "training"):
        for name, path in modules_of(package).items():
            assert not {m for m in module_imports(path) if m.startswith("cifar10_cli")}, f"{name} imports the CLI"


def test_no_import_cycle_in_training():
    modules = modules_of("training")
    graph = {name: {m for m in module_imports(path) if m in modules} for name, path in modules.items()}

    def visit(node: str, stack: list[str]) -> None:
        assert node not in stack, "import cycle: " + " -> ".join([*stack[stack.index(node):], node])
        for nxt in graph[node]:
            visit(nxt, [*stack, node])

    for name in graph:
        visit(name, [])


def test_training_imports_form_no_cycle_even_lazily():
    """training/ is one-way, counting the imports inside functions too: train calls export, export never
    imports train (what both need lives in training/settings.py and training/data.py)."""
    modules = modules_of("training")
    graph = {name: {m for m in every_import(path) if m in modules} for name, path in modules.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle in training/: " + " -> ".join(cycle)
    assert "training.export" in graph["training.train"] and "training.train" not in graph["training.export"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # the check itself works


def test_registry_knows_no_models_and_imports_no_keras():
    source = (ROOT / "training" / "registry.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not {m for m in imported if m.split(".")[0] in ("keras", "tensorflow")}
    decorated = [node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
                 for deco in node.decorator_list if "register_model" in ast.unparse(deco)]
    assert not decorated, f"the registry registers models itself: {decorated}"


def test_main_window_is_small():
    lines = (ROOT / "desktop_app" / "main_window.py").read_text(encoding="utf-8").count("\n")
    assert lines < 300, f"desktop_app/main_window.py has {lines} lines: move a part into its own module"
