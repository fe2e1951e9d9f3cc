"""The layer rule of the package, checked by reading every import in ``src/minigpt``.

Each entry of ``LAYERS`` is one layer, top first; a module may import from its own package
and from layers below its own, never from a layer above. Every import counts: those at the
top of a file, those inside functions (lazy) and those under ``if TYPE_CHECKING:``, because a
cycle through any of them is still a cycle a reader has to untangle. ``tests/test_layers.py``
runs the check, and ``python -m minigpt._layers`` prints the violations.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = "minigpt"

# Top first. A name is a module or a package (which covers everything inside it).
LAYERS: list[tuple[str, ...]] = [
    ("minigpt", "minigpt.__main__"),  # the public facade: re-exports every stage
    ("minigpt.cli",),  # thin: parse arguments, call the API, print
    ("minigpt.demo", "minigpt.serve"),  # applications built from the stages
    ("minigpt.sweep",),  # many training runs
    ("minigpt.training",),  # one training run
    ("minigpt.evaluation",),
    ("minigpt.inference",),  # generation and chat with a loaded model
    ("minigpt.interop",),  # loading runs and foreign formats; exports
    ("minigpt.model",),
    ("minigpt.checkpoint",),
    ("minigpt.data",),
    (
        "minigpt.config",
        "minigpt.runtime",
        "minigpt.errors",
        "minigpt._version",
        "minigpt._layers",
        "minigpt.extras",
        "minigpt.hostmem",
        "minigpt.gpus",
    ),
]


def layer_of(module: str) -> int | None:
    """Index in ``LAYERS`` of the most specific entry that owns ``module``."""
    best: tuple[int, int] | None = None
    for index, names in enumerate(LAYERS):
        for name in names:
            owns = module == name or (name != PACKAGE and module.startswith(name + "."))
            if owns and (best is None or len(name) > best[1]):
                best = (index, len(name))
    return None if best is None else best[0]


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, module) for every import of a minigpt module anywhere in the file."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.append((node.lineno, base))
            # ``from minigpt.x import y`` may name a submodule y
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] == PACKAGE]


def import_graph(src: Path) -> dict[str, dict[str, int]]:
    """module -> {imported minigpt module: first line}, for every module under ``src``."""
    root = src / PACKAGE
    paths = {module_name(p, src): p for p in sorted(root.rglob("*.py"))}
    graph: dict[str, dict[str, int]] = {}
    for module, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        edges: dict[str, int] = {}
        for line, target in imported_modules(tree, module, path.name == "__init__.py"):
            if target in paths and target != module:
                edges.setdefault(target, line)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The import cycles: strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def violations(src: Path) -> list[str]:
    """One line per import cycle, per import that goes up the layers, and per module that no
    layer owns."""
    problems = [f"import cycle: {' <-> '.join(c)}" for c in cycles(import_graph(src))]
    root = src / PACKAGE
    existing = {module_name(p, src) for p in root.rglob("*.py")}
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, src)
        own = layer_of(module)
        if own is None:
            problems.append(f"{path}: module {module} belongs to no layer (add it to LAYERS)")
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, target in imported_modules(tree, module, path.name == "__init__.py"):
            if target not in existing:
                continue  # a name imported from a module, not a module
            theirs = layer_of(target)
            same_package = target.startswith(module.rsplit(".", 1)[0] + ".")
            if theirs is not None and theirs < own and not same_package:
                problems.append(
                    f"{path}:{line}: {module} ({'/'.join(LAYERS[own])}) imports {target}, "
                    f"a layer above ({'/'.join(LAYERS[theirs])})"
                )
    return problems


def main() -> int:
    src = Path(__file__).resolve().parents[1]
    problems = violations(src)
    for problem in problems:
        print(problem)
    print(f"{len(problems)} layer violation(s)" if problems else "layers: no violations")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
