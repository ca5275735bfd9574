"""The OSS-Instruct recipe end to end through the real vLLM engine with the tiny random model.

The tiny model writes noise, so its answers end as drops with reasons; the rejected rows show what was
asked (fragments of real standard-library files). `test_code_demos.py` runs SmolLM2, whose answers survive.
"""

import json

import pyarrow.parquet as pq
import pytest

from builders.code_sources import stdlib_folder
from conftest import REPO, run_recipe, write_jsonl

pytestmark = pytest.mark.vllm


def read_output(out, part: str = "data") -> tuple[list[str], list[dict]]:
    """Column names and rows of an output folder's parquet files (an empty dataset has columns, no rows)."""
    table = pq.read_table(out / part)
    return table.schema.names, table.to_pylist()


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


def error_of(capsys, *args):
    with pytest.raises(SystemExit) as exit_:
        run_recipe("oss_instruct", *args)
    assert exit_.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_bad_settings_are_one_line_errors(tmp_path, capsys):
    base = ["--config", SMOKE, "--output_dir", tmp_path / "out"]
    assert "snippet_min_lines <= snippet_max_lines" in error_of(capsys, *base, "--snippet_min_lines", "20")
    assert "does not exist" in error_of(capsys, *base, "--dataset", tmp_path / "nowhere")
    assert "matches `include`" in error_of(capsys, *base, "--dataset", REPO / "builders", "--include", "*.go")
    assert not (tmp_path / "out").exists()
    # benchmarks are read when the stage runs (Run.decontaminate), after generation: the error still names the fix
    message = error_of(capsys, *base, "--decontaminate", "[openai_humaneval]")
    assert "decontaminate[0]" in message and "columns" in message
