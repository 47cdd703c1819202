"""The shape of `src/polyret`, read with `ast`: no import cycles, short functions, lazy imports only where they pay.

- No import cycle among polyret modules, counting imports inside functions and modules named in strings
  (``"polyret.train.contrastive:train_contrastive"``, the registries' lazy references).
- No function longer than 80 lines.
- An import inside a function must pay: it loads a *heavy* library (slow to import: torch, transformers, faiss,
  numpy, pydantic, ...) that the importing module does not already load at its top, directly or through a polyret
  module; and it says so in a comment (on its line or just above its block of imports). Everything else is imported
  at the top.
- The CLI module and the two registries load no heavy library (so `polyret --help` stays fast), the study never
  imports the report, the report reads training only through the method registry, and `polyret.data` imports nothing
  of ours but data, io and errors.
- No task or method name is a string literal in `report/`, `study/` or `cli.py` (the registries say what names
  mean; `report/published.py` is the table of published numbers keyed by them).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "polyret"
MAX_FUNCTION_LINES = 80
#: libraries that take long to import (≥ 0.1 s, or pull CUDA/BLAS state in): a module that does not need them for
#: everything it does imports them inside the function that does
HEAVY_LIBRARIES = frozenset(
    {
        "accelerate",
        "datasets",
        "faiss",
        "huggingface_hub",
        "ir_measures",
        "matplotlib",
        "numpy",
        "onnxruntime",
        "optimum",
        "peft",
        "pydantic",
        "safetensors",
        "scipy",
        "sentence_transformers",
        "sklearn",
        "tokenizers",
        "torch",
        "transformers",
    }
)
LIGHT_ENTRY_POINTS = ("polyret.cli", "polyret.eval.tasks", "polyret.train.methods")
STRING_REFERENCE = re.compile(r"^(polyret(?:\.\w+)+)(?::\w+)?$")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # a polyret module or a library's top-level name
    line: int
    local: bool  # inside a function
    commented: bool  # a comment on its line or just above its block of imports
    string: bool = False  # a "module:function" reference in a string


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The polyret module ``name`` refers to (a module, or the module holding an attribute), else None."""
    while name:
        if name in modules():
            return name
        name = name.rpartition(".")[0]
    return None


def _comment_lines(source: str) -> set[int]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {token.start[0] for token in tokens if token.type == tokenize.COMMENT}


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _context(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> tuple[bool, bool]:
    """(inside a function, under ``if TYPE_CHECKING``)."""
    local = checking = False
    while node in parents:
        node = parents[node]
        local = local or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        checking = checking or (isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test))
    return local, checking


def _commented(node: ast.stmt, parents: dict[ast.AST, ast.AST], comments: set[int]) -> bool:
    """A comment on the import's lines, on an import above it in the same block, or on the line above the block."""
    body = getattr(parents.get(node), "body", [])
    position = next((i for i, stmt in enumerate(body) if stmt is node), 0)
    first = position
    while first > 0 and isinstance(body[first - 1], ast.Import | ast.ImportFrom):
        first -= 1
    lines = {line for stmt in body[first : position + 1] for line in range(stmt.lineno, stmt.end_lineno + 1)}
    return bool(comments & (lines | {body[first].lineno - 1}))


def _targets(node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif node.module:
        yield node.module
        yield from (f"{node.module}.{alias.name}" for alias in node.names)


@cache
def imports() -> list[Import]:
    found: list[Import] = []
    for name, path in modules().items():
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        parents, comments = _parents(tree), _comment_lines(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                match = STRING_REFERENCE.match(node.value)
                target = _resolve(match.group(1)) if match else None
                if target and target != name:
                    found.append(Import(name, target, node.lineno, True, True, string=True))
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            local, checking = _context(node, parents)
            if checking:
                continue
            commented = _commented(node, parents, comments)
            seen: set[str] = set()
            for raw in _targets(node):
                target = _resolve(raw) if raw.startswith("polyret") else raw.split(".")[0]
                if target and target != name and target not in seen:
                    seen.add(target)
                    found.append(Import(name, target, node.lineno, local, commented))
    return found


@cache
def weights() -> dict[str, frozenset[str]]:
    """Per polyret module, the heavy libraries importing it loads (its top-level imports, followed transitively)."""
    top = [item for item in imports() if not item.local]
    weight = {name: {i.target for i in top if i.module == name and i.target in HEAVY_LIBRARIES} for name in modules()}
    changed = True
    while changed:
        changed = False
        for item in top:
            if item.target in weight and not weight[item.target] <= weight[item.module]:
                weight[item.module] |= weight[item.target]
                changed = True
    return {name: frozenset(libraries) for name, libraries in weight.items()}


def _loads(target: str) -> frozenset[str]:
    """The heavy libraries importing ``target`` (a polyret module or a library) loads."""
    if target in weights():
        return weights()[target]
    return frozenset({target}) if target in HEAVY_LIBRARIES else frozenset()


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_no_import_cycles_counting_imports_inside_functions_and_string_references():
    edges: dict[str, set[str]] = {name: set() for name in modules()}
    for item in imports():
        if item.target in edges:
            edges[item.module].add(item.target)
    assert _cycles(edges) == []


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_function_longer_than_80_lines():
    long = []
    for path in modules().values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def test_imports_inside_functions_pay_and_say_so():
    local = [i for i in imports() if i.local and not i.string]
    unpaid = [f"{i.module}:{i.line} {i.target}" for i in local if not _loads(i.target) - weights()[i.module]]
    silent = [f"{i.module}:{i.line} {i.target}" for i in local if not i.commented]
    assert unpaid == [], "nothing heavy waits here: import these at the top of the module"
    assert silent == [], "say why the import waits (e.g. `# torch loads only when training starts`)"


@pytest.mark.parametrize("module", LIGHT_ENTRY_POINTS)
def test_the_command_line_and_the_registries_load_nothing_heavy(module: str):
    """`polyret --help` imports polyret.cli, which reads the registries for its help texts."""
    assert weights()[module] == frozenset()


@pytest.mark.parametrize(
    ("layer", "forbidden", "allowed"),
    [
        ("polyret.study", "polyret.report", ()),
        ("polyret.report", "polyret.train", ("polyret.train.methods",)),
        ("polyret.data", "polyret.", ("polyret.data", "polyret.io", "polyret.errors")),
    ],
)
def test_imports_point_downward(layer: str, forbidden: str, allowed: tuple[str, ...]):
    wrong = [
        f"{i.module}:{i.line} {i.target}"
        for i in imports()
        if i.module.startswith(layer)
        and i.target.startswith(forbidden)
        and not any(i.target == a or i.target.startswith(a + ".") for a in allowed)
    ]
    assert wrong == []


def test_no_task_or_method_name_is_spelled_outside_the_registries():
    from polyret.eval.tasks import task_names
    from polyret.train.methods import method_names

    names = set(task_names()) | set(method_names())
    readers = [p for p in (*(PACKAGE / "report").glob("*.py"), *(PACKAGE / "study").glob("*.py"), PACKAGE / "cli.py")]
    spelled = [
        f"{path.relative_to(SRC)}:{node.lineno} {node.value!r}"
        for path in readers
        if path.name != "published.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and node.value in names
    ]
    assert spelled == []
