"""The package's import graph, read from the source with `ast` (nothing is imported): data flows one
way, from the core up to the command line, and no module grows past what one reader can hold."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "videoscore_reward"

# Lowest first. A module may import modules of its own layer's parts or of lower layers, never higher.
LAYERS = [
    {"reward", "extras", "_version", "spreadsheet"},  # the core, and leaves that import nothing of the package
    {"files", "testing"},
    {"folder", "integrations"},
    {"evaluation"},
    {"app", "serve"},
    {"cli", "__main__"},
    {""},  # videoscore_reward/__init__.py, the facade
]
MAX_LINES = 450  # "about 400": a module past this does more than one job


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def _runtime_nodes(tree: ast.AST):
    """Every node of `tree` except those under `if TYPE_CHECKING:` (annotations only, never run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def imports(name: str) -> set[str]:
    """The package's modules that module `name` imports when it runs, anywhere in its body (inside
    functions too: a call-time import still makes the dependency)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module
            # `from pkg import sub` imports the module pkg.sub; `from pkg import name` imports pkg.
            targets = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in MODULES else origin for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # `import a.b.c` of a module a.b.c that is not ours
                target = target.rpartition(".")[0]
            if target.startswith("videoscore_reward") and target != name:
                found.add(target)
    return found


GRAPH = {name: imports(name) for name in MODULES}


def layer(name: str) -> int:
    part = name.split(".")[1] if "." in name else ""
    for rank, parts in enumerate(LAYERS):
        if part in parts:
            return rank
    # A new top-level part that imports nothing of the package (like spreadsheet.py) is a leaf.
    prefix = f"videoscore_reward.{part}"
    if not any(t for n, ts in GRAPH.items() if n == prefix or n.startswith(prefix + ".") for t in ts if not t.startswith(prefix)):
        return 0
    raise AssertionError(f"{name} is in no layer of {LAYERS}: add its top-level part where it belongs.")


def test_no_module_imports_a_module_above_it():
    upward = [
        f"{name} imports {target}"
        for name, targets in sorted(GRAPH.items())
        for target in sorted(targets)
        if layer(target) > layer(name)
    ]
    assert not upward, "imports against the flow core -> CLI:\n" + "\n".join(upward)


def test_no_import_cycles():
    # Tarjan's strongly connected components: any with two or more modules is a cycle.
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while not component or member != node:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


def test_the_graph_is_read():
    # The checks above pass on an empty graph; these edges are known to exist.
    assert "videoscore_reward.reward.scorer" in GRAPH["videoscore_reward.folder.score"] or \
        "videoscore_reward.reward" in GRAPH["videoscore_reward.folder.score"]
    assert "videoscore_reward.files" in GRAPH["videoscore_reward.folder.score"]
    assert "videoscore_reward.reward.aspects" in GRAPH["videoscore_reward.reward.base"]
    assert layer("videoscore_reward.cli") > layer("videoscore_reward.reward.scorer")
    # Type-only imports are left out: base imports reward_fn at run time, reward_fn base only for types.
    assert "videoscore_reward.reward.reward_fn" in GRAPH["videoscore_reward.reward.base"]
    assert "videoscore_reward.reward.base" not in GRAPH["videoscore_reward.reward.reward_fn"]


def test_no_module_is_too_long():
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by job): {long}"
