"""Harvest self-contained, pure Python functions from source code with `ast` (for Case2Code).

A module-level function is kept when it takes at least one named argument, returns a value, and needs
nothing but its arguments, the safe builtins and the standard library's pure modules (math, re, itertools,
...): no file, network, process or OS access, no `print`/`input`, no global state, no other names of its
module. Every other function is counted under the reason it failed:

    harvest = harvest_functions(source, path="textwrap.py")
    harvest.functions   # [{"name", "code", "params", "path"}]: code = the imports it needs + the function
    harvest.dropped     # Counter({"uses_module_names": 7, "no_return_value": 2, ...})

The check is static and conservative; running the functions (in the sandbox) is the final word.
"""

from __future__ import annotations

import ast
import builtins
from collections import Counter
from dataclasses import dataclass, field

from datasets import Dataset, Features, Sequence, Value

# Modules whose functions compute and return, with no I/O and no hidden state.
PURE_MODULES = frozenset(
    {
        "math",
        "cmath",
        "re",
        "string",
        "itertools",
        "functools",
        "operator",
        "collections",
        "heapq",
        "bisect",
        "fractions",
        "decimal",
        "statistics",
        "textwrap",
        "unicodedata",
        "keyword",
        "copy",
        "numbers",
        "struct",
        "binascii",
        "base64",
        "hashlib",
        "zlib",
        "difflib",
        "html",
        "json",
        "colorsys",
        "fnmatch",
        "ipaddress",
        "calendar",
        "typing",
        "dataclasses",
        "enum",
        "array",
        "reprlib",
    }
)
# Builtins with side effects, hidden state, or non-reproducible results (id, hash of str, object reprs).
IMPURE_BUILTINS = frozenset(
    {
        "open",
        "print",
        "input",
        "exec",
        "eval",
        "compile",
        "__import__",
        "globals",
        "locals",
        "vars",
        "breakpoint",
        "exit",
        "quit",
        "help",
        "id",
        "hash",
        "memoryview",
        "copyright",
        "credits",
        "license",
        "setattr",
        "delattr",
        "object",
        "super",
        "classmethod",
        "staticmethod",
        "property",
    }
)
SAFE_BUILTINS = frozenset(name for name in dir(builtins) if not name.startswith("_")) - IMPURE_BUILTINS
COLUMNS = {"function": "code", "name": "name", "params": "params", "required": "required", "path": "path"}
FEATURES = {
    "function": Value("string"),
    "name": Value("string"),
    "params": Sequence(Value("string")),
    "required": Sequence(Value("string")),
    "path": Value("string"),
}


@dataclass
class Harvest:
    functions: list[dict] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    considered: int = 0

    def add(self, other: Harvest) -> None:
        self.functions += other.functions
        self.dropped.update(other.dropped)
        self.considered += other.considered

    def to_dataset(self, row_column: str = "_row") -> Dataset:
        """The kept functions as rows `{"function", "name", "params", "required", "path"}` plus a row id."""
        columns = {name: [f[key] for f in self.functions] for name, key in COLUMNS.items()}
        columns[row_column] = list(range(len(self.functions)))
        return Dataset.from_dict(columns, features=Features({**FEATURES, row_column: Value("int64")}))


def harvest_functions(source: str, path: str = "<source>", max_lines: int = 60) -> Harvest:
    """The pure functions defined at the top level of `source`, and the reasons the others were left."""
    harvest = Harvest()
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        harvest.dropped["module_does_not_parse"] += 1
        return harvest
    imports = _module_imports(tree)
    module_names = _module_bound_names(tree) - set(imports)
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        harvest.considered += 1
        reason, needed = _judge(node, imports, module_names, max_lines)
        if reason:
            harvest.dropped[reason] += 1
            continue
        code = ast.get_source_segment(source, node)
        header = "".join(imports[name] + "\n" for name in sorted(needed))
        harvest.functions.append(
            {
                "name": node.name,
                "code": header + ("\n" if header else "") + code + "\n",
                "params": _parameters(node.args),
                "required": _required(node.args),
                "path": path,
            }
        )
    return harvest


def harvest_rows(documents, code_column: str = "code", path_column: str = "path", max_lines: int = 60) -> Harvest:
    """Harvest every document of an iterable of rows (a Dataset), in order."""
    total = Harvest()
    for row in documents:
        total.add(harvest_functions(row[code_column], row[path_column], max_lines))
    return total


def _parameters(args: ast.arguments) -> list[str]:
    return [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]


def _required(args: ast.arguments) -> list[str]:
    """Parameters without a default value."""
    positional = [*args.posonlyargs, *args.args]
    without_default = positional[: len(positional) - len(args.defaults)]
    keyword_only = [a for a, default in zip(args.kwonlyargs, args.kw_defaults) if default is None]
    return [a.arg for a in (*without_default, *keyword_only)]


def _judge(node, imports: dict[str, str], module_names: set[str], max_lines: int) -> tuple[str | None, set[str]]:
    """(reason to drop or None, the module-level imports the function needs)."""
    args = node.args
    if isinstance(node, ast.AsyncFunctionDef):
        return "async", set()
    if node.decorator_list:
        return "decorated", set()
    if args.vararg or args.kwarg:
        return "variadic_arguments", set()
    if args.posonlyargs:
        return "positional_only_arguments", set()  # inputs are given as keyword arguments
    params = _parameters(args)
    if not params:
        return "no_arguments", set()
    if params[0] in ("self", "cls"):
        return "method_like", set()
    if node.end_lineno - node.lineno + 1 > max_lines:
        return "too_long", set()
    own = list(_own_nodes(node))
    if any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in own):
        return "generator", set()
    if not any(isinstance(n, ast.Return) and not _is_none(n.value) for n in own):
        return "no_return_value", set()
    everything = list(ast.walk(node))
    if any(isinstance(n, (ast.Global, ast.Nonlocal)) for n in everything):
        return "global_state", set()
    local_modules = {}
    for n in everything:
        if isinstance(n, (ast.Import, ast.ImportFrom)):
            for alias in n.names:
                module = n.module if isinstance(n, ast.ImportFrom) else alias.name
                if isinstance(n, ast.ImportFrom) and n.level or (module or "").partition(".")[0] not in PURE_MODULES:
                    return "impure_module", set()
                local_modules[(alias.asname or alias.name).partition(".")[0]] = module
    needed = set()
    for name in sorted(_free_names(node)):
        if name in local_modules:
            continue
        if name in imports:
            if _imported_module(imports[name]) not in PURE_MODULES:
                return "impure_module", set()
            needed.add(name)
        elif name in module_names:
            return "uses_module_names", set()
        elif name in IMPURE_BUILTINS:
            return "impure_builtin", set()
        elif name not in SAFE_BUILTINS:
            return "undefined_name", set()
    return None, needed


def _own_nodes(node):
    """The nodes of a function's body, not descending into nested functions, lambdas or classes."""
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
    stack = [child for child in node.body if not isinstance(child, scopes)]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(child for child in ast.iter_child_nodes(current) if not isinstance(child, scopes))


def _is_none(value) -> bool:
    return value is None or (isinstance(value, ast.Constant) and value.value is None)


def _free_names(node) -> set[str]:
    """Names a function reads that it never binds (parameters, assignments, imports, nested defs ...)."""
    loaded, bound = set(), set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            (loaded if isinstance(n.ctx, ast.Load) else bound).add(n.id)
        elif isinstance(n, ast.arg):
            bound.add(n.arg)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n is not node:
            bound.add(n.name)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).partition(".")[0] for a in n.names)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            bound.add(n.name)
        elif isinstance(n, (ast.MatchAs, ast.MatchStar)) and n.name:
            bound.add(n.name)
    return loaded - bound


def _module_imports(tree: ast.Module) -> dict[str, str]:
    """Top-level import statements by the name they bind: {"m": "import math as m", "sqrt": "from math ..."}."""
    imports = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = (alias.asname or alias.name).partition(".")[0]
                text = f"import {alias.name} as {alias.asname}" if alias.asname else f"import {alias.name}"
                imports[bound] = text
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name == "*":
                    continue
                suffix = f" as {alias.asname}" if alias.asname else ""
                imports[alias.asname or alias.name] = f"from {node.module} import {alias.name}{suffix}"
        elif isinstance(node, ast.ImportFrom):  # relative imports bind package-internal names
            for alias in node.names:
                imports[alias.asname or alias.name] = "from . import ?"
    return imports


def _imported_module(statement: str) -> str:
    words = statement.split()
    return words[1].partition(".")[0]


def _module_bound_names(tree: ast.Module) -> set[str]:
    """Every name the module binds at its top level (functions, classes, constants, in try/if blocks too)."""
    names = set()
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue  # their own names are not the module's
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).partition(".")[0] for a in node.names)
        stack.extend(ast.iter_child_nodes(node))
    return names
