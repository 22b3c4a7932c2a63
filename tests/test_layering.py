"""The shape of the house, checked on the source (AST, nothing imported).

- the core (``dopomoga``) never imports the services;
- no deployable (``services/{eligibility,calculation,budget,gateway,treasury}``) imports another;
- the shared stream frame (``services/platform``) never imports the rules or budget core;
- the dev stack (``services/devstack``) is used only by the composition root (and by tests and benches);
- no import circles among modules, counting imports inside functions as well (a circle hidden in
  function bodies is still one: ``services/cli.py <-> services/demo.py`` was).

Every import counts, at module level or inside a function, except those under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dopomoga", "schemas", "services")
DEPLOYABLES = ("eligibility", "calculation", "budget", "gateway", "treasury")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    return {module_name(p): p for package in packages for p in sorted((ROOT / package).rglob("*.py"))}


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below ``node``, skipping ``if TYPE_CHECKING:`` bodies (never run)."""
    for child in ast.iter_child_nodes(node):
        if _type_checking(child):
            yield from (n for c in child.orelse for n in [c, *_walk(c)])  # type: ignore[attr-defined]
            continue
        yield child
        yield from _walk(child)


def imported(path: Path, name: str, known: set[str]) -> set[str]:
    """The modules ``path`` (module ``name``) imports, anywhere in the file: ``from a.b import c``
    is ``a.b.c`` when that is a module, else ``a.b``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
    return found


def graph(packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """module -> the modules of ``packages`` it imports."""
    paths = modules(packages)
    known = set(paths)
    return {name: {m for m in imported(path, name, known) if m in known} for name, path in paths.items()}


def _in(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def edges(packages: tuple[str, ...] = PACKAGES) -> Iterator[tuple[str, str]]:
    """Every import of every module in ``packages`` (of any package, not only ours)."""
    paths = modules(packages)
    known = set(paths)
    for name, path in paths.items():
        for target in imported(path, name, known):
            yield name, target


def cycles(deps: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: strongly connected components of more than one module (or a self-import)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan; the graph is a few hundred modules, recursion is fine
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(deps.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in deps.get(node, ()):
                found.append(sorted(component))

    for node in sorted(deps):
        if node not in index:
            visit(node)
    return found


def test_the_core_never_imports_the_services():
    wrong = sorted((m, t) for m, t in edges(("dopomoga",)) if _in(t, "services"))
    assert not wrong, f"the core imports the services: {wrong}"


def test_no_deployable_imports_another():
    wrong = []
    for m, t in edges(("services",)):
        for mine in DEPLOYABLES:
            others = [f"services.{d}" for d in DEPLOYABLES if d != mine]
            if _in(m, f"services.{mine}") and _in(t, *others):
                wrong.append((m, t))
    assert not wrong, f"a deployable imports another: {sorted(wrong)}"


def test_the_shared_frame_never_imports_the_rules_or_budget_core_nor_a_deployable():
    wrong = sorted(
        (m, t)
        for m, t in edges(("services",))
        if _in(m, "services.platform")
        and _in(t, "dopomoga.rules", "dopomoga.budget", "services.devstack", *(f"services.{d}" for d in DEPLOYABLES))
    )
    assert not wrong, f"services/platform reaches into the core or a service: {wrong}"


def test_only_the_composition_root_uses_the_dev_stack():
    wrong = sorted(
        (m, t)
        for m, t in edges(("dopomoga", "services"))
        if _in(t, "services.devstack") and not _in(m, "services.devstack") and m != "services.cli"
    )
    assert not wrong, f"production code imports the dev stack: {wrong}"


def test_there_are_no_import_circles():
    found = cycles(graph())
    assert not found, f"import circles: {found}"


def test_the_checks_see_what_they_guard():
    """The checker finds function-level imports, ``from`` imports of modules and circles."""
    deps = graph()
    assert "dopomoga.budget.ledger" in deps["dopomoga.budget.location"]  # inside open_ledger()
    assert "services.devstack.demo" in deps["services.devstack.cli"]  # inside up()
    assert {"services.platform.topology", "dopomoga.cli"} <= deps["services.cli"] | deps["services.platform.cli"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"a"}}) == [["a"]]
