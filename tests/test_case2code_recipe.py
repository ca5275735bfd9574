"""The Case2Code recipe end to end through the real vLLM engine with the tiny random model.

Structured output (`inputs_format: json`) turns the tiny model's noise into lists of inputs, which really
run in the sandbox. On functions that accept any value some survive, and every output can be checked
against the function run here.
"""

import ast
import importlib.util
import json

import pytest

from builders.methods.code.case2code_prompts import TEMPLATES, strip_docstring
from conftest import REPO, read_output, run_recipe

pytestmark = pytest.mark.vllm


SMOKE = str(REPO / "configs" / "case2code" / "smoke.yaml")
COLUMNS = ["function", "examples", "prompt", "target", "name", "template", "num_shown", "source", "model"]
ANY_VALUE = '''"""Functions that accept any value, so even a random model's inputs run."""


def kind(value):
    """The name of the value's type."""
    return type(value).__name__


def size(value):
    return len(repr(value))


def wrap(value):
    return [value, value]


def is_text(value):
    return isinstance(value, str)


def loud(value):
    print(value)
    return value
'''


@pytest.fixture(scope="module")
def any_value_output(tmp_path_factory):
    root = tmp_path_factory.mktemp("c2c")
    (root / "code").mkdir()
    (root / "code" / "shapes.py").write_text(ANY_VALUE)
    out = root / "out"
    run_recipe("case2code", "--config", SMOKE, "--output_dir", out, "--dataset", root / "code", "--include", "[]")
    return out, root / "code" / "shapes.py"


def test_observed_outputs_are_what_the_functions_return(any_value_output):
    out, path = any_value_output
    columns, ds = read_output(out)
    assert columns == COLUMNS and len(ds) > 0
    spec = importlib.util.spec_from_file_location("shapes", path)
    shapes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shapes)
    for row in ds:
        assert row["name"] in {"kind", "size", "wrap", "is_text"} and row["source"] == "shapes.py"
        assert len(row["examples"]) >= 2 and len({e["output"] for e in row["examples"]}) > 1
        for example in row["examples"]:
            assert example["output"] == repr(getattr(shapes, row["name"])(**ast.literal_eval(example["input"])))
        assert row["template"] in TEMPLATES and 2 <= row["num_shown"] <= len(row["examples"])
        assert row["target"] == strip_docstring(row["function"]) and row["target"].startswith(f"def {row['name']}(")
        shown = [e for e in row["examples"] if e["output"] in row["prompt"].replace("\\|", "|")]
        assert len(shown) >= min(row["num_shown"], len({e["output"] for e in row["examples"]}))
        assert row["model"] == "tiny-random"


def test_funnel_of_the_any_value_run(any_value_output):
    stats = json.loads((any_value_output[0] / "stats.json").read_text())
    stages = {s["name"]: s for s in stats["stages"]}
    assert stages["harvest"]["rows_in"] == 5 and stages["harvest"]["dropped"] == {"impure_builtin": 1}  # loud
    assert stages["execute"]["rows_in"] == stages["parse_inputs"]["rows_out"]
    assert stages["execute"]["details"]["executions"] > 0
    assert stages["prompts"]["rows_out"] == len(read_output(any_value_output[0])[1])


def test_smoke_config_on_the_standard_library(tmp_path):
    out = tmp_path / "out"
    run_recipe("case2code", "--config", SMOKE, "--output_dir", out)
    stats = json.loads((out / "stats.json").read_text())
    names = [s["name"] for s in stats["stages"]]
    assert names == [
        "input",
        "python_documents",
        "harvest",
        "dedup_functions",
        "sample",
        "inputs",
        "parse_inputs",
        "execute",
        "prompts",
    ]
    stages = {s["name"]: s for s in stats["stages"]}
    assert stages["harvest"]["rows_out"] > 40 and stages["sample"]["rows_out"] == 16
    for stage in stats["stages"][3:]:
        assert stage["rows_in"] - stage["rows_out"] == sum(stage["dropped"].values())
    execute = stages["execute"]
    assert set(execute["dropped"]) <= {"timeout", "constant_output", "too_few_examples", "all_inputs_raise"}
    assert execute["details"]["executions"] > 0 and "rlimits" in execute["details"]["sandbox"]
    assert read_output(out)[0] == COLUMNS


def test_code_without_usable_functions_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "io_only.py").write_text("import os\n\ndef here(name):\n    return os.getcwd()\n")
    with pytest.raises(SystemExit) as exit_:
        run_recipe(
            "case2code",
            "--config",
            SMOKE,
            "--output_dir",
            tmp_path / "out",
            "--dataset",
            tmp_path / "code",
            "--include",
            "[]",
        )
    assert exit_.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no function" in message and "impure_module" in message
    assert not (tmp_path / "out").exists()
