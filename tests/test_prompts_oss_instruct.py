"""OSS-Instruct: the prompt, and the parser and filters on answers shaped like real model output."""

from datasets import Dataset

from builders.filters.checks import apply_checks
from builders.methods.code.oss_instruct import build_prompt, parse_problem_solution, solution_checks, solution_code

MARKDOWN = """## Problem
You are given a list of strings, each a line of a configuration file. Write a function
`strip_comments(lines)` that returns the lines with everything after a `#` removed, dropping lines
that become empty. Example: `["a = 1  # one", "# note", "b = 2"]` gives `["a = 1", "b = 2"]`.

## Solution
```python
def strip_comments(lines):
    result = []
    for line in lines:
        code = line.split("#", 1)[0].rstrip()
        if code:
            result.append(code)
    return result
```

The function splits each line at the first `#` and keeps the part before it.
"""

BOLD = """Sure! Here is a problem and its solution.

**Problem:**
Implement `clamp(value, low, high)` returning `value` limited to the closed range [low, high].

**Solution:**
```py
def clamp(value, low, high):
    return max(low, min(value, high))
```
"""

BRACKETS = """[Problem Description]
Create a JavaScript function `debounce(fn, ms)` that delays calls to `fn` until `ms` milliseconds have passed
without another call.

[Solution]
```javascript
function debounce(fn, ms) {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}
```
"""

NO_SOLUTION = """## Problem
Write a function that reverses the words of a sentence.

I hope this helps! Let me know if you need anything else."""

NO_CODE = """## Problem
Write a function that reverses the words of a sentence.

## Solution
Split the sentence on spaces, reverse the list, and join it back with spaces."""

BAD_PYTHON = """### Problem
Write `factorial(n)` that returns the factorial of a non-negative integer n (1 when n is 0).

### Solution
```python
def factorial(n)
    return 1 if n <= 1 else n * factorial(n - 1)
```"""

REFERS_TO_SNIPPET = """## Problem
Refactor the code snippet above so that it uses a dictionary instead of the chain of if statements.

## Solution
```python
def lookup(key):
    return {"a": 1, "b": 2}.get(key)
```"""

OWN_SNIPPET = """## Problem
The following snippet is meant to sum a list but returns the wrong value:

```python
def total(xs):
    s = 0
    for x in xs:
        s = x
    return s
```
Fix the given snippet.

## Solution
```python
def total(xs):
    return sum(xs)
```"""


def test_prompt_shows_the_fragment_in_its_language():
    prompt = build_prompt("for i in range(3):\n    print(i)", "python")
    assert "```python\nfor i in range(3):\n    print(i)\n```" in prompt
    assert '"## Problem"' in prompt and '"## Solution"' in prompt and "Python" in prompt
    assert "```cpp" in build_prompt("int x;", "cpp") and "C++" in build_prompt("int x;", "cpp")


def test_parser_reads_the_usual_heading_styles():
    problem, solution = parse_problem_solution(MARKDOWN)
    assert problem.startswith("You are given a list of strings") and problem.endswith('["a = 1", "b = 2"]`.')
    assert solution.startswith("```python\ndef strip_comments") and solution.endswith("before it.")
    problem, solution = parse_problem_solution(BOLD)
    assert problem.startswith("Implement `clamp(") and "max(low, min(value, high))" in solution
    problem, solution = parse_problem_solution(BRACKETS)
    assert problem.startswith("Create a JavaScript function") and solution_code(solution, "javascript").startswith(
        "function debounce"
    )
    assert parse_problem_solution(NO_SOLUTION)[1] is None
    assert parse_problem_solution("Just some text") == (None, None)
    assert parse_problem_solution("## Solution\n```python\nx = 1\n```") == (None, None)  # no problem first


def test_solution_code_prefers_the_language_block():
    solution = "```text\nexample output\n```\n\n```python\ndef f():\n    return 1\n```"
    assert solution_code(solution, "python") == "def f():\n    return 1\n"


def test_filters_name_the_reason():
    answers = [
        (MARKDOWN, "python"),
        (BOLD, "python"),
        (BRACKETS, "javascript"),
        (NO_SOLUTION, "python"),
        (NO_CODE, "python"),
        (BAD_PYTHON, "python"),
        (REFERS_TO_SNIPPET, "python"),
        (OWN_SNIPPET, "python"),
        ("Random words without sections", "python"),
        ("## Problem\n(the exercise)\n\n## Solution\n```python\nx = 1\n```", "python"),
    ]
    rows = []
    for text, lang in answers:
        problem, solution = parse_problem_solution(text)
        rows.append({"problem": problem, "solution": solution, "lang": lang})
    kept, rejected, counts = apply_checks(Dataset.from_list(rows), solution_checks(), desc="test")
    assert len(kept) == 4  # MARKDOWN, BOLD, BRACKETS, OWN_SNIPPET (it shows its own code)
    assert dict(counts) == {
        "missing_solution_section": 1,
        "no_code_block": 1,
        "solution_does_not_parse": 1,
        "problem_refers_to_snippet": 1,
        "missing_problem_section": 1,
        "problem_too_short": 1,
    }
