"""Case2Code's execution stage: real functions run in the sandbox, judged with a reason for every drop."""

from builders.methods.code.case2code import judge, observe
from builders.methods.code.harvest import harvest_functions
from builders.methods.code.sources import stdlib_folder


def row(code: str, name: str, inputs: list[dict]) -> dict:
    return {"function": code, "name": name, "inputs": [repr(i) for i in inputs]}


def test_observe_real_stdlib_functions():
    harvest = harvest_functions((stdlib_folder() / "colorsys.py").read_text(), "colorsys.py")
    functions = {f["name"]: f["code"] for f in harvest.functions}
    rgb = [{"r": 1.0, "g": 0.0, "b": 0.0}, {"r": 0.2, "g": 0.4, "b": 0.6}, {"r": 0.5, "g": 0.5, "b": 0.5}]
    rows = [
        row(functions["rgb_to_hsv"], "rgb_to_hsv", [*rgb, {"r": "red", "g": 0, "b": 0}]),
        row(functions["rgb_to_yiq"], "rgb_to_yiq", rgb),
    ]
    kept, report = observe(rows, timeout_s=5.0, max_output_chars=200, min_examples=3, workers=2)
    assert [r["name"] for r in kept] == ["rgb_to_hsv", "rgb_to_yiq"]
    import colorsys  # the sandbox's outputs are what the real function returns

    for r in kept:
        for example in r["examples"]:
            args = eval(example["input"])  # our own literals; tests only
            assert example["output"] == repr(getattr(colorsys, r["name"])(**args))
    assert len(kept[0]["examples"]) == 3 and dict(report.examples_dropped) == {"input_raises": 1}
    assert report.executions == 7 and report.examples_kept == 6
    details = report.details()
    assert details["executions_per_s"] > 0 and "rlimits" in details["sandbox"]


def test_functions_are_dropped_with_reasons():
    rows = [
        row("def same(x):\n    return 1\n", "same", [{"x": 1}, {"x": 2}, {"x": 3}]),
        row("def spin(x):\n    while x:\n        pass\n    return x\n", "spin", [{"x": 0}, {"x": 1}, {"x": 0}]),
        row("def inv(x):\n    return 1 / x\n", "inv", [{"x": 0}, {"x": 0.0}, {"x": 2}]),
        row("def big(x):\n    return 'a' * x\n", "big", [{"x": 1}, {"x": 500}, {"x": 2}, {"x": 3}]),
        row("def obj(x):\n    return lambda: x\n", "obj", [{"x": 1}, {"x": 2}, {"x": 3}]),
        row("def fail(x):\n    raise ValueError(x)\n", "fail", [{"x": 1}, {"x": 2}]),
        row("def ok(x):\n    return x * 2\n", "ok", [{"x": 1}, {"x": 2}, {"x": 3}]),
    ]
    kept, report = observe(rows, timeout_s=1.0, max_output_chars=100, min_examples=3, workers=2)
    assert [r["name"] for r in kept] == ["big", "ok"]
    assert kept[0]["examples"] == [
        {"input": "{'x': 1}", "output": "'a'"},
        {"input": "{'x': 2}", "output": "'aa'"},
        {"input": "{'x': 3}", "output": "'aaa'"},
    ]
    assert dict(report.functions_dropped) == {
        "constant_output": 1,
        "timeout": 1,
        "too_few_examples": 2,  # inv (two raise), obj (its outputs print memory addresses)
        "all_inputs_raise": 1,
    }
    assert dict(report.examples_dropped) == {
        "input_raises": 4,
        "output_too_long": 1,
        "output_not_reproducible": 3,
    }


def test_judge_on_results_as_the_sandbox_gives_them():
    ok = {"ok": True, "error": None}
    outcomes = [{**ok, "output": "1"}, {"ok": False, "output": None, "error": "load_failed: exception: X"}]
    assert judge(["{'x': 1}", "{'x': 2}"], outcomes, 2)[2] == "too_few_examples"
    loading = [{"ok": False, "output": None, "error": "load_failed: exception: NameError"}] * 2
    assert judge(["{'x': 1}", "{'x': 2}"], loading, 2)[2] == "load_failed"


def test_inputs_that_are_not_literals_are_dropped_not_fatal():
    # Found with SmolLM2: `{'x': -y}` parses as Python but `ast.literal_eval` refuses it.
    code = "def double(x):\n    return 2 * x\n"
    good = [repr({"x": 1}), repr({"x": 2}), repr({"x": 3})]
    rows = [{"function": code, "name": "double", "inputs": [good[0], "{'x': -y}", *good[1:], "{'x': f()}"]}]
    kept, report = observe(rows, timeout_s=5.0, max_output_chars=200, min_examples=3, workers=1)
    assert [e["output"] for e in kept[0]["examples"]] == ["2", "4", "6"]
    assert report.examples_dropped["input_not_a_literal"] == 2 and report.executions == 3
