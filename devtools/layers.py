"""The gateway's layers, and the check that keeps its imports going one way (``make check``).

Read from the source, nothing imported: every import counts, at the top of a module, inside a
function (lazy) and under ``if TYPE_CHECKING:`` alike, because a lazy or type-only import that
closes a circle is a circle held together by a workaround. The root package's ``__init__`` is the
public facade (re-exports, a lazy ``__getattr__`` that keeps ``import gateway.proof`` cheap) and is
left out, as ``../shared/tools/import_circles.py`` does.

``python -m devtools.layers`` prints the layers and any violation; ``tests/architecture`` runs it.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# Lowest first. A module may import modules of lower layers and of its own package; packages that
# share a layer are independent of each other. docs/ARCHITECTURE.md says why each exists.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("gateway.errors", "gateway.types", "gateway.paths"),  # the floor
    ("gateway.proof",),  # the identity headers and their proof: what apps import
    ("gateway.observe",),  # events, audit log, metrics: everything emits into them
    ("gateway.store",),  # persistence behind one protocol
    ("gateway.fetch", "gateway.state"),  # outbound HTTP; what survives between requests
    ("gateway.gate", "gateway.signin"),  # may this request pass; signing people in
    ("gateway.settings",),  # configuration: builds rules and providers, imports no runtime part
    ("gateway.runtime",),  # the composition root
    ("gateway.pages",),  # the gateway's own pages
    ("gateway.front",),  # the doors: nginx, forward auth, the mode-2 proxy
    ("gateway.app",),  # the dispatcher
    ("gateway.cli",),  # the command
    ("gateway.__main__",),  # python -m gateway
)


@dataclass(frozen=True, slots=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module
    line: int
    kind: str  # "top", "lazy" or "type-only"


def modules(package_dir: Path) -> dict[str, Path]:
    """Every module of the package under ``package_dir``, by dotted name."""
    found = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


class _Visitor(ast.NodeVisitor):
    def __init__(self) -> None:
        self.found: list[tuple[ast.Import | ast.ImportFrom, str]] = []
        self._functions = 0
        self._type_checking = 0

    def _kind(self) -> str:
        return "type-only" if self._type_checking else "lazy" if self._functions else "top"

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._functions += 1
        self.generic_visit(node)
        self._functions -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        guarded = "TYPE_CHECKING" in ast.unparse(node.test)
        self._type_checking += guarded
        for child in node.body:
            self.visit(child)
        self._type_checking -= guarded
        for child in node.orelse:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.append((node, self._kind()))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self.found.append((node, self._kind()))


def imports(package_dir: Path) -> Iterator[Import]:
    """Every import of a module of the package by another of its modules (the facade left out)."""
    known = modules(package_dir)
    root = package_dir.name
    seen: set[tuple[str, str, int]] = set()
    for name, path in known.items():
        if name == root:
            continue
        visitor = _Visitor()
        visitor.visit(ast.parse(path.read_text(), str(path)))
        for node, kind in visitor.found:
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parts = name.split(".")[: len(name.split(".")) - node.level + (path.name == "__init__.py")]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                # ``from package import name``: the submodule ``name`` if it is one, and the package itself.
                candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for candidate in candidates:
                parts = candidate.split(".")
                while parts and ".".join(parts) not in known:
                    parts.pop()
                target = ".".join(parts)
                if target and target not in (name, root) and (name, target, node.lineno) not in seen:
                    seen.add((name, target, node.lineno))
                    yield Import(name, target, node.lineno, kind)


def layer_of(module: str, layers: Sequence[Sequence[str]]) -> tuple[int, str] | None:
    """The layer index and the package (a layer entry) ``module`` belongs to."""
    for index, members in enumerate(layers):
        for member in members:
            if module == member or module.startswith(member + "."):
                return index, member
    return None


def circles(edges: Sequence[Import]) -> list[list[str]]:
    """The import circles among modules (strongly connected components of two or more)."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def problems(package_dir: Path, layers: Sequence[Sequence[str]] = LAYERS) -> list[str]:
    """Every circle, every import up or sideways across the layers, and every module in no layer."""
    edges = list(imports(package_dir))
    found = [f"import circle: {' -> '.join(circle)}" for circle in circles(edges)]
    root = package_dir.name
    for name in modules(package_dir):
        if name != root and layer_of(name, layers) is None:
            found.append(f"{name} is in no layer: add it to devtools/layers.py LAYERS")
    for edge in edges:
        source, target = layer_of(edge.source, layers), layer_of(edge.target, layers)
        if source is None or target is None or source[1] == target[1]:
            continue
        if target[0] > source[0]:
            found.append(f"{edge.source}:{edge.line} imports {edge.target} ({edge.kind}): "
                         f"{target[1]} is above {source[1]}")
        elif target[0] == source[0]:
            found.append(f"{edge.source}:{edge.line} imports {edge.target} ({edge.kind}): "
                         f"{source[1]} and {target[1]} share a layer and stay independent")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    package = Path((argv or sys.argv[1:] or ["gateway"])[0])
    for index, members in enumerate(LAYERS):
        print(f"{index:2}  {'  '.join(members)}")
    found = problems(package)
    for problem in found:
        print("error:", problem, file=sys.stderr)
    print(f"{len(found)} problem(s) in {package}'s imports")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
