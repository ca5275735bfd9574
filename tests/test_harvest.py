"""Harvesting pure functions from real standard-library source."""

import ast

import pytest

from builders.methods.code.harvest import PURE_MODULES, harvest_functions, harvest_rows
from builders.methods.code.sources import load_code, stdlib_folder


def stdlib(name: str) -> str:
    return (stdlib_folder() / name).read_text()


def top_level_functions(source: str) -> list[ast.FunctionDef]:
    return [n for n in ast.parse(source).body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


@pytest.mark.parametrize("name", ["operator.py", "colorsys.py", "bisect.py", "textwrap.py", "heapq.py", "string.py"])
def test_every_top_level_function_is_kept_or_dropped_with_a_reason(name):
    source = stdlib(name)
    harvest = harvest_functions(source, name)
    assert harvest.considered == len(top_level_functions(source))
    assert len(harvest.functions) + sum(harvest.dropped.values()) == harvest.considered
    for function in harvest.functions:
        tree = ast.parse(function["code"])  # each kept function stands alone
        names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
        assert names == [function["name"]]


def test_operator_module():
    harvest = harvest_functions(stdlib("operator.py"), "operator.py")
    kept = {f["name"]: f for f in harvest.functions}
    # setitem and delitem return nothing; `_abs` comes from builtins but is bound by the module
    assert {"add", "sub", "concat", "countOf", "indexOf", "length_hint"} <= set(kept)
    assert "setitem" not in kept and "delitem" not in kept and harvest.dropped["no_return_value"] == 2
    assert kept["add"]["params"] == ["a", "b"] and kept["add"]["required"] == ["a", "b"]
    assert kept["length_hint"]["params"] == ["obj", "default"] and kept["length_hint"]["required"] == ["obj"]
    assert kept["add"]["code"].startswith("def add(a, b):")


def test_colorsys_drops_functions_that_need_module_constants():
    harvest = harvest_functions(stdlib("colorsys.py"), "colorsys.py")
    kept = [f["name"] for f in harvest.functions]
    assert kept == ["rgb_to_yiq", "yiq_to_rgb", "rgb_to_hls", "rgb_to_hsv", "hsv_to_rgb"]
    assert dict(harvest.dropped) == {"uses_module_names": 2}  # hls_to_rgb and _v use ONE_THIRD / _v


def test_imports_a_function_needs_come_with_it():
    source = "import math\nimport os\nfrom re import sub as s\n\nLIMIT = 3\n\n" + (
        "def hyp(a, b):\n    return math.sqrt(a * a + b * b)\n\n"
        "def clean(text):\n    return s(r'\\s+', ' ', text)\n\n"
        "def here(name):\n    return os.path.join(os.getcwd(), name)\n\n"
        "def capped(x):\n    return min(x, LIMIT)\n\n"
        "def shout(x):\n    print(x)\n    return x\n\n"
        "def local(x):\n    import json\n    return json.dumps(x)\n\n"
        "def sneaky(x):\n    import subprocess\n    return subprocess.run(x)\n\n"
        "def nothing(x):\n    x += 1\n\n"
        "def gen(x):\n    yield x\n\n"
        "def kw(*, x):\n    return x\n\n"
        "def pos(x, /):\n    return x\n"
    )
    harvest = harvest_functions(source)
    kept = {f["name"]: f["code"] for f in harvest.functions}
    assert kept["hyp"].startswith("import math\n\ndef hyp")
    assert kept["clean"].startswith("from re import sub as s\n\ndef clean")
    assert kept["local"].startswith("def local") and set(kept) == {"hyp", "clean", "local", "kw"}
    assert dict(harvest.dropped) == {
        "impure_module": 2,  # here (os), sneaky (subprocess)
        "uses_module_names": 1,  # capped (LIMIT)
        "impure_builtin": 1,  # shout (print)
        "no_return_value": 1,
        "generator": 1,
        "positional_only_arguments": 1,
    }


def test_broken_source_is_counted_not_raised():
    harvest = harvest_functions("def f(:\n")
    assert harvest.functions == [] and dict(harvest.dropped) == {"module_does_not_parse": 1}


@pytest.mark.slow
def test_whole_standard_library():
    docs = load_code("stdlib")
    harvest = harvest_rows(docs)
    kept = harvest.functions
    assert harvest.considered == sum(len(top_level_functions(c)) for c in docs["code"] if _parses(c))
    assert len(kept) > 300, harvest.dropped
    for function in kept:
        for node in ast.walk(ast.parse(function["code"])):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert all(m.partition(".")[0] in PURE_MODULES for m in modules), function
    print(f"\nstdlib: {len(docs)} files, {harvest.considered} functions, {len(kept)} kept, {dict(harvest.dropped)}")


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return True
