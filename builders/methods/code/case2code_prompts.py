"""Case2Code prompts: asking for example inputs, parsing them safely, and the training prompts.

`inputs_prompt` asks a model for about ten calls of a function as a list of dicts; `parse_inputs` reads the
answer with `ast.literal_eval` only (a `dict(a=1)` call is rewritten into a dict literal first; nothing is
ever evaluated). `training_prompt` shows m of a function's observed input/output pairs through one of the
`TEMPLATES` in `case2code/` (each its own way of asking), chosen by (seed, row).
"""

from __future__ import annotations

import ast
import json
import random
import re

from builders.generation.stage import row_seed
from builders.prompts import render

TEMPLATES = (
    "repl_session",
    "arrows",
    "input_output_pairs",
    "assertions",
    "table",
    "signature_completion",
    "numbered_observations",
    "doctest",
    "reverse_engineer",
    "anonymous",
    "test_log",
    "terse",
    "bullet_behaviour",
)
_BLOCK = re.compile(r"```[ \t]*(?:python|py|json)?[^\n]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
_JSON_NAMES = {"true": True, "false": False, "null": None}


def inputs_prompt(code: str, name: str, params: list[str], num_inputs: int) -> str:
    example = "{" + ", ".join(f"'{p}': ..." for p in params) + "}"
    return render(
        "case2code/inputs.jinja",
        code=code.strip(),
        function_name=name,
        params=params,
        num_inputs=num_inputs,
        example=example,
    )


def inputs_pattern(signatures: list[list[str]], num_inputs: int) -> str:
    """A regex for `structured={"regex": ...}`: a compact JSON list of argument objects with simple values.

    Structured output is set per generation call, not per row, so each object may take the parameter names of
    any function of the call (`signatures`: the names each function needs); `parse_inputs` keeps the objects
    that fit the row's function. No free whitespace, so a weak model cannot spend its tokens on blanks. The
    pattern grows with the number of distinct signatures: meant for small runs and weak models.
    """
    number = r"-?(0|[1-9][0-9]{0,3})(\.[0-9]{1,3})?"
    string = r'"[A-Za-z0-9 _.,:;!?-]{0,16}"'
    scalar = f"({number}|{string}|true|false|null)"
    value = f"({scalar}|\\[({scalar}(,{scalar}){{0,5}})?\\])"
    objects = [
        "\\{" + ",".join(f"{re.escape(json.dumps(name))}:{value}" for name in names) + "\\}"
        for names in sorted({tuple(names) for names in signatures})
    ]
    item = "(" + "|".join(objects) + ")"
    return f"\\[{item}(,{item}){{0,{num_inputs - 1}}}\\]"


def parse_inputs(text: str, params: list[str], required: list[str], limit: int) -> tuple[list[dict] | None, str]:
    """The distinct valid inputs (dicts of keyword arguments) of a model's answer, at most `limit`.

    Returns (inputs, "") or (None, reason): `inputs_do_not_parse` when no list literal can be read,
    `no_valid_inputs` when none of its items is a dict naming only parameters and every required one.
    """
    value = _read_list(text or "")
    if value is None:
        return None, "inputs_do_not_parse"
    inputs, seen = [], set()
    for item in value:
        if not isinstance(item, dict) or not all(isinstance(k, str) for k in item):
            continue
        if not set(item) <= set(params) or not set(required) <= set(item):
            continue
        key = repr(item)
        if key not in seen:
            seen.add(key)
            inputs.append(item)
        if len(inputs) == limit:
            break
    return (inputs, "") if inputs else (None, "no_valid_inputs")


def _read_list(text: str) -> list | None:
    """The items of the first list literal in the answer that can be read; items that are no literal are left out."""
    candidates = [m.group(1) for m in _BLOCK.finditer(text)] + [text]
    for candidate in candidates:
        start, end = candidate.find("["), candidate.rfind("]")
        if start < 0 or end <= start:
            continue
        literal = candidate[start : end + 1]
        try:
            value = json.loads(literal)
        except (ValueError, RecursionError):  # a hostile answer nests brackets thousands deep
            value = _literal_items(literal)
        if isinstance(value, list):
            return value
    return None


def _literal_items(text: str) -> list | None:
    """`ast.literal_eval` of each item of a list display, after rewriting `dict(a=1)` into `{'a': 1}` and
    JSON's true/false/null; None when `text` is not a list display at all. Nothing is ever evaluated."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if not isinstance(tree.body, ast.List):
        return None
    items = []
    for node in tree.body.elts:
        try:
            items.append(ast.literal_eval(_Literals().visit(node)))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue  # a call, a name, arithmetic: not a literal
    return items


class _Literals(ast.NodeTransformer):
    def visit_Call(self, node: ast.Call):
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
            if all(k.arg for k in node.keywords):
                keys = [ast.Constant(k.arg) for k in node.keywords]
                return ast.Dict(keys=keys, values=[k.value for k in node.keywords])
        return node  # any other call stays, and literal_eval refuses it

    def visit_Name(self, node: ast.Name):
        return ast.Constant(_JSON_NAMES[node.id]) if node.id in _JSON_NAMES else node


def describe_example(name: str, kwargs_text: str, output: str) -> dict:
    """The ways templates show one observed call: as a call, as keyword arguments, as a dict, and its output."""
    kwargs = ast.literal_eval(kwargs_text)
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return {"call": f"{name}({args})", "args": args, "kwargs": kwargs_text, "output": output}


def choose_shown(num_examples: int, seed: int, row_id: int, min_shown: int, max_shown: int) -> tuple[list[int], str]:
    """Which examples a training prompt shows (m of n, in a seeded order) and through which template."""
    rng = random.Random(row_seed(seed, row_id, "case2code"))
    low = min(min_shown, num_examples)
    m = rng.randint(low, max(low, min(max_shown, num_examples)))
    shown = sorted(rng.sample(range(num_examples), m))
    return shown, rng.choice(TEMPLATES)


def training_prompt(template: str, name: str, params: list[str], examples: list[dict]) -> str:
    return render(f"case2code/{template}.jinja", function_name=name, params=params, examples=examples)


def strip_docstring(code: str) -> str:
    """The function code without its docstring (the target should not be handed an English description)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    func = next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
    if func is None or len(func.body) < 2:
        return code
    first = func.body[0]
    if not (
        isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)
    ):
        return code
    if first.lineno == func.lineno:
        return code  # `def f(x): "doc"; ...` on one line: leave it
    lines = code.splitlines(keepends=True)
    kept = lines[: first.lineno - 1] + lines[first.end_lineno :]
    if first.end_lineno < len(lines) and not lines[first.end_lineno].strip():
        kept = lines[: first.lineno - 1] + lines[first.end_lineno + 1 :]  # the blank line after it too
    return "".join(kept)
