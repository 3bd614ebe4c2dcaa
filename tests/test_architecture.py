"""Architecture rules for the product code, checked statically with ``ast``.

Nothing here imports a product module: the source files are parsed, so the
checks need no settings, no database and run in well under a second.
``ARCH_ROOT`` points the checks at another checkout (default: this repo).
"""

import ast
import os
from pathlib import Path

import pytest

PACKAGES = ("campaigns", "contacts", "sinch", "config")
EXCLUDED_DIRS = {"migrations", "tests", "bench"}
MAX_LINES = 500
# The URLconf wires admin views (the health page) into the site: not domain code.
ADMIN_WIRING = {"config.urls"}
Graph = dict[str, dict[str, int]]  # importer -> {imported: line of 1st import}
ROOT = Path(os.environ.get("ARCH_ROOT") or Path(__file__).resolve().parent.parent)


def product_modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every product .py file under root."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if EXCLUDED_DIRS.intersection(parts):
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Attribute):  # typing.TYPE_CHECKING
        return test.attr == "TYPE_CHECKING"
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"


def _import_nodes(nodes):
    """Import statements at any depth, except under ``if TYPE_CHECKING:``."""
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _import_nodes(node.orelse)
        else:
            yield from _import_nodes(ast.iter_child_nodes(node))


def _targets(node, module: str, is_package: bool, modules) -> list[str]:
    """Modules that one import statement names (product modules or not)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: walk up from the importing module's package
        package = module.split(".") if is_package else module.split(".")[:-1]
        anchor = package[: len(package) - node.level + 1]
        base = ".".join([*anchor, *([base] if base else [])])
    return [
        f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
        for alias in node.names
    ]


def import_graph(root: Path) -> Graph:
    """Edges between product modules; an edge to a package means its __init__.

    Deliberately ignored: the implicit import of the parent packages'
    ``__init__`` that Python runs before ``a.b.c``. Empty ones have no edges
    to close a cycle; re-exporting ones (campaigns.models, campaigns.admin)
    would otherwise drag every sibling into one cycle with the real culprit.
    """
    modules = product_modules(root)
    graph: Graph = {}
    for module, path in modules.items():
        edges, is_package = graph.setdefault(module, {}), path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _import_nodes(tree.body):
            for target in _targets(node, module, is_package, modules):
                if target in modules and target != module:
                    edges.setdefault(target, node.lineno)
    return graph


def import_cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in graph.get(node, {}):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def describe_cycle(graph: Graph, component: list[str]) -> str:
    edges = [
        f"    {source}:{line} imports {target}"
        for source in component
        for target, line in sorted(graph[source].items())
        if target in component
    ]
    return " <-> ".join(component) + "\n" + "\n".join(edges)


def oversized_modules(root: Path, limit: int = MAX_LINES) -> dict[str, int]:
    """Relative path -> line count, for product files longer than limit."""
    paths = product_modules(root).values()
    sizes = {
        p.relative_to(root).as_posix(): len(p.read_text("utf-8").splitlines())
        for p in paths
    }
    return {path: lines for path, lines in sizes.items() if lines > limit}


def is_admin_module(module: str) -> bool:
    """``<app>/admin.py`` or anything under ``<app>/admin/``."""
    parts = module.split(".")
    return len(parts) > 1 and parts[1] == "admin"


def admin_imports(graph: Graph) -> list[tuple[str, int, str]]:
    """(importer, line, admin module) for non-admin modules importing the admin."""
    return sorted(
        (source, line, target)
        for source, edges in graph.items()
        if not is_admin_module(source) and source not in ADMIN_WIRING
        for target, line in edges.items()
        if is_admin_module(target)
    )


# The campaigns app's layers, lowest first: a module may import its own layer
# and the ones below, never one above. Modules named nowhere are not checked.
LAYERS = (
    (
        "campaigns.models",
        "campaigns.placeholders",
        "campaigns.channel_properties",
        "campaigns.counters",
        "campaigns.transitions",
        "campaigns.notifications",
        "campaigns.erasure",
        "config.lib",
    ),
    # The compliance guards are rules of the audience and the message, as
    # authoring's are: the check, the freeze and the launch read them.
    ("campaigns.authoring", "campaigns.compliance", "campaigns.segments"),
    ("campaigns.dispatch",),
    ("campaigns.tracking",),
    ("campaigns.tasks", "campaigns.schedules", "campaigns.apps", "campaigns.admin"),
)


def layer_of(module: str) -> int | None:
    for level, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return level
    return None


def upward_imports(graph: Graph) -> list[tuple[str, int, str]]:
    """(importer, line, imported) where a lower layer imports a higher one."""
    found = []
    for source, edges in graph.items():
        below = layer_of(source)
        for target, line in edges.items():
            above = layer_of(target)
            if below is not None and above is not None and above > below:
                found.append((source, line, target))
    return sorted(found)


def test_product_modules_have_no_import_cycles():
    graph = import_graph(ROOT)
    cycles = [describe_cycle(graph, c) for c in import_cycles(graph)]
    if cycles:
        pytest.fail("Import cycles between product modules:\n" + "\n".join(cycles))


def test_no_product_module_is_over_500_lines():
    oversized = oversized_modules(ROOT)
    listing = "\n".join(
        f"    {path}: {lines} lines"
        for path, lines in sorted(oversized.items(), key=lambda item: -item[1])
    )
    if oversized:
        pytest.fail(f"Modules over {MAX_LINES} lines:\n{listing}")


def test_dependencies_point_from_tracking_to_dispatch_to_authoring_to_models():
    offenders = upward_imports(import_graph(ROOT))
    listing = "\n".join(f"    {s}:{line} imports {t}" for s, line, t in offenders)
    if offenders:
        pytest.fail(
            f"Imports against the layers (models <- authoring <- "
            f"dispatch <- tracking <- tasks and admin):\n{listing}"
        )


def test_domain_modules_never_import_the_admin():
    offenders = admin_imports(import_graph(ROOT))
    listing = "\n".join(f"    {s}:{line} imports {t}" for s, line, t in offenders)
    if offenders:
        pytest.fail(f"Non-admin modules importing the admin:\n{listing}")


def test_the_checker_sees_a_cycle_an_oversized_module_and_an_admin_import(tmp_path):
    files = {
        "campaigns/__init__.py": "",
        "campaigns/a.py": "def load():\n    from campaigns import b\n",
        "campaigns/b.py": "from . import a\n",
        "campaigns/big.py": "x = 1\n" * 501,
        "campaigns/admin/__init__.py": "",
        "campaigns/admin/x.py": "from campaigns.b import thing\n",
        "campaigns/domain.py": "import os\nimport campaigns.admin.x\n",
        "campaigns/typed.py": (
            "from typing import TYPE_CHECKING\nimport campaigns.peer\n"
            "if TYPE_CHECKING:\n    from campaigns.admin import x\n"
        ),
        "campaigns/peer.py": (
            "import typing\nif typing.TYPE_CHECKING:\n    from campaigns import typed\n"
        ),
        "campaigns/migrations/0001_initial.py": "import campaigns.admin\n" * 600,
        "campaigns/tests/test_big.py": "from campaigns.admin import x\n" * 600,
        "config/urls.py": "from campaigns.admin import x\n",  # ADMIN_WIRING
        "campaigns/dispatch/__init__.py": "",
        "campaigns/dispatch/drain.py": "from campaigns.tracking import board\n",
        "campaigns/tracking/__init__.py": "",
        "campaigns/tracking/board.py": "from campaigns.dispatch import drain\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")

    graph = import_graph(tmp_path)

    assert graph["campaigns.admin.x"] == {"campaigns.b": 1}  # a name, not a module
    assert import_cycles(graph) == [
        ["campaigns.a", "campaigns.b"],
        ["campaigns.dispatch.drain", "campaigns.tracking.board"],
    ]
    assert upward_imports(graph) == [
        ("campaigns.dispatch.drain", 1, "campaigns.tracking.board")
    ]
    assert describe_cycle(graph, ["campaigns.a", "campaigns.b"]).splitlines() == [
        "campaigns.a <-> campaigns.b",
        "    campaigns.a:2 imports campaigns.b",
        "    campaigns.b:1 imports campaigns.a",
    ]
    assert oversized_modules(tmp_path) == {"campaigns/big.py": 501}
    assert admin_imports(graph) == [("campaigns.domain", 2, "campaigns.admin.x")]


def app_imports(graph: Graph, source_app: str, target_app: str):
    """(importer, line, imported) where `source_app` imports `target_app`."""
    return sorted(
        (source, line, target)
        for source, edges in graph.items()
        if source.split(".")[0] == source_app
        for target, line in edges.items()
        if target.split(".")[0] == target_app
    )


def test_contacts_never_imports_campaigns():
    """campaigns builds on contacts, never the reverse: campaigns takes part
    in a contact's erasure (contact_erased) and history (contacts.history
    sources) by registering from its AppConfig.ready()."""
    offenders = app_imports(import_graph(ROOT), "contacts", "campaigns")
    listing = "\n".join(f"    {s}:{line} imports {t}" for s, line, t in offenders)
    if offenders:
        pytest.fail(f"contacts importing campaigns:\n{listing}")
