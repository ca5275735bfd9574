"""The OSS-Instruct recipe end to end through the real vLLM engine with the tiny random model.

The tiny model writes noise, so its answers end as drops with reasons; the rejected rows show what was
asked (fragments of real standard-library files). `test_code_demos.py` runs SmolLM2, whose answers survive.
Decontamination needs rows that pass the filters: there a scripted server (tests/scripted_server.py) writes
the answers, one copying a benchmark's problem, one a benchmark's solution, one original.
"""

import json

import pytest
from scripted_server import ScriptedServer, last_user_message

from builders.methods.code.sources import stdlib_folder
from conftest import REPO, read_output, recipe_error, run_recipe, write_jsonl

SMOKE = str(REPO / "configs" / "oss_instruct" / "smoke.yaml")
COLUMNS = ["seed_snippet", "lang", "problem", "solution", "source", "model"]
REASONS = {
    "request_failed",
    "empty",
    "missing_problem_section",
    "missing_solution_section",
    "no_code_block",
    "solution_does_not_parse",
    "problem_refers_to_snippet",
    "problem_too_short",
}


BENCHMARK = [  # two HumanEval-style tasks (our own), given as a local file as a user gives HumanEval or MBPP
    {
        "prompt": 'def running_maximum(numbers: list) -> list:\n    """Return the running maximum of the list, '
        'element by element, so that each entry is the largest number seen so far."""\n'
    },
    {
        "prompt": "Write a function that counts the vowels in a string, ignoring case, and returns the count as an integer."
    },
]


@pytest.fixture(scope="module")
def smoke_output(tmp_path_factory):
    folder = tmp_path_factory.mktemp("oss")
    benchmark = write_jsonl(folder / "humaneval_like.jsonl", BENCHMARK)
    decontaminate = f"[{{path: {benchmark}, columns: [prompt], split: train}}]"
    out = folder / "out"
    run_recipe(
        "oss_instruct",
        "--config",
        SMOKE,
        "--output_dir",
        out,
        "--keep_rejected",
        "true",
        "--decontaminate",
        decontaminate,
    )
    return out


@pytest.mark.vllm
def test_funnel_accounts_for_every_row(smoke_output):
    stats = json.loads((smoke_output / "stats.json").read_text())
    stages = {s["name"]: s for s in stats["stages"]}
    names = [s["name"] for s in stats["stages"]]
    assert names[:7] == [
        "input",
        "snippets",
        "seeds",
        "generate",
        "filter",
        "decontaminate_problem",
        "decontaminate_solution",
    ]
    assert stages["decontaminate_problem"]["rows_in"] == stages["filter"]["rows_out"]
    assert stages["input"]["rows_out"] == 8 and stages["generate"]["rows_out"] == 8
    for stage in stats["stages"]:
        assert stage["rows_in"] - stage["rows_out"] == sum(stage["dropped"].values())
    assert set(stages["filter"]["dropped"]) <= REASONS
    columns, rows = read_output(smoke_output)
    assert columns == COLUMNS and len(rows) == stats["stages"][-1]["rows_out"]
    assert stats["tokens"]["completion"] > 0


@pytest.mark.vllm
def test_prompts_carry_fragments_of_the_seed_files(smoke_output):
    _, rejected = read_output(smoke_output, "rejected")
    rows = [json.loads(r["row"]) for r in rejected]
    assert len(rows) == 8 - len(read_output(smoke_output)[1])
    assert {r["reason"] for r in rejected} <= REASONS and {r["stage"] for r in rejected} == {"filter"}
    for row in rows:
        source = (stdlib_folder() / row["source"].removeprefix("stdlib/")).read_text().splitlines()
        fragment = row["seed_snippet"].splitlines()
        assert 1 <= len(fragment) <= 15 and row["lang"] == "python"
        assert any(source[i : i + len(fragment)] == fragment for i in range(len(source)))
        user, assistant = row["prompt"]  # the answer is prefilled with the problem heading
        assert f"```python\n{row['seed_snippet']}\n```" in user["content"] and user["role"] == "user"
        assert assistant == {"role": "assistant", "content": "## Problem\n"}


@pytest.mark.vllm
def test_bad_settings_are_one_line_errors(tmp_path, capsys):
    base = ["--config", SMOKE, "--output_dir", tmp_path / "out"]
    assert "snippet_min_lines <= snippet_max_lines" in recipe_error(
        capsys, "oss_instruct", *base, "--snippet_min_lines", "20"
    )
    assert "does not exist" in recipe_error(capsys, "oss_instruct", *base, "--dataset", tmp_path / "nowhere")
    assert "matches `include`" in recipe_error(
        capsys, "oss_instruct", *base, "--dataset", REPO / "builders", "--include", "*.go"
    )
    assert not (tmp_path / "out").exists()
    # benchmarks are read when the stage runs (Run.decontaminate), after generation: the error still names the fix
    message = recipe_error(capsys, "oss_instruct", *base, "--decontaminate", "[openai_humaneval]")
    assert "decontaminate[0]" in message and "columns" in message


# A benchmark in HumanEval's columns and one in MBPP's, with tasks of our own, given as local files.
HUMANEVAL_LIKE = {
    "prompt": 'def running_maximum(numbers: list) -> list:\n    """Return the running maximum of the list, element by '
    'element, so that each entry is the largest number seen so far."""\n',
    "canonical_solution": "    result, best = [], None\n    for n in numbers:\n        best = n if best is None else "
    "max(best, n)\n        result.append(best)\n    return result\n",
}
MBPP_LIKE = {
    "text": "Write a function that counts the vowels in a string, ignoring case, and returns the count as an integer.",
    "code": 'def count_vowels(text):\n    total = 0\n    for ch in text.lower():\n        if ch in "aeiou":\n'
    "            total += 1\n    return total\n",
}
# The scripted model's answer to a fragment of each source file (every line of a file names the file).
ANSWERS = {
    "copies_a_problem": (
        f"Complete this function:\n\n```python\n{HUMANEVAL_LIKE['prompt']}```\n",
        "from itertools import accumulate\n\n\ndef running_maximum(numbers):\n    return list(accumulate(numbers, max))\n",
    ),
    "copies_a_solution": (
        "Given a sentence, report how many of its letters are a, e, i, o or u, treating capitals like small letters.",
        MBPP_LIKE["code"],
    ),
    "original": (
        "Write `merge_intervals(intervals)`: given a list of (start, end) pairs, return a new list, sorted by "
        "start, in which every group of overlapping pairs is merged into one pair.",
        "def merge_intervals(intervals):\n    merged = []\n    for start, end in sorted(intervals):\n"
        "        if merged and start <= merged[-1][1]:\n            merged[-1][1] = max(merged[-1][1], end)\n"
        "        else:\n            merged.append([start, end])\n    return [tuple(pair) for pair in merged]\n",
    ),
}


def scripted_answer(body):
    """The continuation of the prefilled "## Problem" heading for the file the fragment came from."""
    asked = last_user_message(body)
    problem, solution = next(answer for name, answer in ANSWERS.items() if name in asked)
    return f"{problem}\n\n## Solution\n```python\n{solution}```\nIt walks the input once."


def test_rows_copying_a_benchmark_are_removed_and_counted_per_benchmark(tmp_path):
    sources = tmp_path / "sources"
    sources.mkdir()
    for name in ANSWERS:
        (sources / f"{name}.py").write_text("".join(f"{name}_{i} = {i}\n" for i in range(6)))
    humaneval = write_jsonl(tmp_path / "humaneval_like.jsonl", [HUMANEVAL_LIKE])
    mbpp = write_jsonl(tmp_path / "mbpp_like.jsonl", [MBPP_LIKE])
    benchmarks = (
        f"[{{path: {humaneval}, split: train, columns: [prompt, canonical_solution]}}, "
        f"{{path: {mbpp}, split: train, columns: [text, code]}}]"
    )
    out = tmp_path / "out"
    with ScriptedServer(reply=scripted_answer) as server:
        run_recipe(
            "oss_instruct",
            *("--config", SMOKE, "--output_dir", out, "--dataset", sources, "--include", "[]"),
            *("--backend", "openai", "--base_url", server.url, "--decontaminate", benchmarks),
            *("--keep_rejected", "true"),
        )
    assert len(server.bodies) == 3

    stages = {s["name"]: s for s in json.loads((out / "stats.json").read_text())["stages"]}
    assert stages["filter"]["rows_out"] == 3  # every answer reaches decontamination
    problem, solution = stages["decontaminate_problem"], stages["decontaminate_solution"]
    assert (problem["rows_in"], problem["rows_out"], problem["dropped"]) == (3, 2, {"contaminated": 1})
    assert problem["details"]["removed_by_humaneval_like"] == 1 and problem["details"]["removed_by_mbpp_like"] == 0
    assert (solution["rows_in"], solution["rows_out"], solution["dropped"]) == (2, 1, {"contaminated": 1})
    assert solution["details"]["removed_by_humaneval_like"] == 0 and solution["details"]["removed_by_mbpp_like"] == 1

    _, rows = read_output(out)
    assert [(r["problem"], r["source"]) for r in rows] == [(ANSWERS["original"][0], "original.py")]
    _, rejected = read_output(out, "rejected")
    removed = {(row := json.loads(r["row"]))["source"]: (r["stage"], r["reason"], row["benchmark"]) for r in rejected}
    assert removed == {
        "copies_a_problem.py": ("decontaminate_problem", "contaminated", "humaneval_like"),
        "copies_a_solution.py": ("decontaminate_solution", "contaminated", "mbpp_like"),
    }
