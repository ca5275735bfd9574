"""Case2Code: parsing model-written inputs safely, choosing pairs and templates, rendering training prompts."""

import ast
import re

import pytest

from builders.methods.code.case2code_prompts import (
    TEMPLATES,
    choose_shown,
    describe_example,
    inputs_pattern,
    inputs_prompt,
    parse_inputs,
    strip_docstring,
    training_prompt,
)

PARAMS, REQUIRED = ["text", "width", "fill"], ["text", "width"]

PYTHON_ANSWER = """Here are ten inputs for `pad`:

```python
[
    {"text": "abc", "width": 5},
    {"text": "", "width": 0, "fill": "*"},
    dict(text="hello", width=2),
    {'text': 'tabs\\tand spaces', 'width': 20, 'fill': '-'},
    {"text": "abc", "width": 5},
    {"text": "x", "width": (1 + 2)},
    {"text": "y"},
    {"text": "z", "width": 3, "colour": "red"},
    {"text": __import__("os").system("touch /tmp/pwned"), "width": 1},
    {"text": b"bytes", "width": 4, "fill": None},
]
```
"""


def test_parse_python_answer_keeps_valid_distinct_literal_calls_and_runs_nothing(tmp_path):
    answer = PYTHON_ANSWER.replace("/tmp/pwned", str(tmp_path / "pwned"))
    inputs, reason = parse_inputs(answer, PARAMS, REQUIRED, limit=10)
    assert reason == ""
    assert inputs == [
        {"text": "abc", "width": 5},
        {"text": "", "width": 0, "fill": "*"},
        {"text": "hello", "width": 2},  # dict(...) read as a literal
        {"text": "tabs\tand spaces", "width": 20, "fill": "-"},
        {"text": b"bytes", "width": 4, "fill": None},
    ]  # gone: the duplicate, arithmetic, no `width`, an unknown `colour`, and the call to __import__
    assert not (tmp_path / "pwned").exists()
    assert parse_inputs(answer, PARAMS, REQUIRED, limit=2)[0] == inputs[:2]


def test_parse_json_and_bare_answers():
    assert parse_inputs(
        '[{"text": "a", "width": 1, "fill": null}, {"text": "b", "width": true}]', PARAMS, REQUIRED, 10
    )[0] == [{"text": "a", "width": 1, "fill": None}, {"text": "b", "width": True}]
    assert parse_inputs("inputs: [{'text': 'q', 'width': 3}] done", PARAMS, REQUIRED, 10)[0] == [
        {"text": "q", "width": 3}
    ]
    assert parse_inputs("no list here", PARAMS, REQUIRED, 10) == (None, "inputs_do_not_parse")
    assert parse_inputs("[1, 2, 3]", PARAMS, REQUIRED, 10) == (None, "no_valid_inputs")
    assert parse_inputs("[{'text': 'a'}]", PARAMS, REQUIRED, 10) == (None, "no_valid_inputs")


def test_hostile_answers_are_drops_not_crashes():
    """Brackets nested 100,000 deep overflow both json and ast; digits past int's limit; a huge exponent."""
    deep = "[" * 100_000 + "]" * 100_000
    for answer in (
        f"```python\n{deep}\n```",
        f'[{{"text": {deep}, "width": 1}}]',
        "[{'text': 'a', 'width': 1" + "0" * 10_000 + "}]",
    ):
        assert parse_inputs(answer, PARAMS, REQUIRED, 10)[0] is None
    assert parse_inputs("[{'text': 'a', 'width': 10**10**10}]", PARAMS, REQUIRED, 10) == (None, "no_valid_inputs")


def test_structured_pattern_accepts_only_fitting_compact_objects():
    pattern = inputs_pattern([["a", "b"], ["x"]], num_inputs=3)
    assert re.fullmatch(pattern, '[{"a":1,"b":"hi"},{"x":[1,2.5,null]}]')
    assert not re.fullmatch(pattern, '[{"a":1}]')  # b is required
    assert not re.fullmatch(pattern, '[{"a":01,"b":2}]')  # not a literal
    assert not re.fullmatch(pattern, '[{"x":1},{"x":2},{"x":3},{"x":4}]')  # more than num_inputs
    assert not re.fullmatch(pattern, '[ {"x":1}]')


def test_inputs_prompt_names_the_parameters():
    prompt = inputs_prompt("def pad(text, width, fill=' '):\n    return text.ljust(width, fill)\n", "pad", PARAMS, 10)
    assert "def pad(text, width, fill=' '):" in prompt and "10 different example inputs" in prompt
    assert "text, width, fill" in prompt and "[{'text': ..., 'width': ..., 'fill': ...}, ...]" in prompt


def test_choose_shown_is_seeded_and_shows_m_of_n():
    choices = [choose_shown(8, seed=1, row_id=r, min_shown=2, max_shown=6) for r in range(200)]
    assert choices == [choose_shown(8, seed=1, row_id=r, min_shown=2, max_shown=6) for r in range(200)]
    assert all(2 <= len(shown) <= 6 and shown == sorted(set(shown)) and max(shown) < 8 for shown, _ in choices)
    assert {len(shown) for shown, _ in choices} == {2, 3, 4, 5, 6}
    assert {template for _, template in choices} == set(TEMPLATES)
    assert choose_shown(3, 1, 0, min_shown=5, max_shown=9)[0] == [0, 1, 2]  # never more than observed


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_shows_every_chosen_pair(template):
    examples = [
        describe_example("pad", "{'text': 'ab', 'width': 4}", "'ab  '"),
        describe_example("pad", "{'text': 'x|y', 'width': 1, 'fill': '*'}", "'x|y'"),
    ]
    prompt = training_prompt(template, "pad", PARAMS, examples)
    assert "pad" in prompt
    for example in examples:
        shown = prompt.replace("\\|", "|")
        assert example["output"] in shown
        assert example["call"] in shown or example["args"] in shown or example["kwargs"] in shown
    assert "{{" not in prompt and "{%" not in prompt
    assert len(TEMPLATES) >= 10 and len({training_prompt(t, "pad", PARAMS, examples) for t in TEMPLATES}) == len(
        TEMPLATES
    )


def test_describe_example_forms():
    example = describe_example("pad", "{'text': 'ab', 'width': 4}", "'ab  '")
    assert example == {
        "call": "pad(text='ab', width=4)",
        "args": "text='ab', width=4",
        "kwargs": "{'text': 'ab', 'width': 4}",
        "output": "'ab  '",
    }


def test_strip_docstring():
    code = 'import math\n\ndef f(x):\n    """Square root.\n\n    More.\n    """\n\n    return math.sqrt(x)\n'
    assert strip_docstring(code) == "import math\n\ndef f(x):\n    return math.sqrt(x)\n"
    ast.parse(strip_docstring(code))
    assert strip_docstring("def f(x):\n    return x\n") == "def f(x):\n    return x\n"
    assert strip_docstring('def f(x):\n    "only a docstring"\n') == 'def f(x):\n    "only a docstring"\n'
