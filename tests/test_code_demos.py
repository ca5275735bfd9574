"""The OSS-Instruct and Case2Code demo configs with the real SmolLM2-135M-Instruct (make test-slow)."""

import ast
import json

import pyarrow.parquet as pq
import pytest

from builders.methods.code.case2code_prompts import TEMPLATES
from builders.methods.code.oss_instruct import refers_to_seed, solution_code
from conftest import REPO, run_recipe

pytestmark = [pytest.mark.slow, pytest.mark.vllm]


def funnel(out):
    stats = json.loads((out / "stats.json").read_text())
    for stage in stats["stages"]:
        print(f"{stage['name']}: {stage['rows_in']} -> {stage['rows_out']} {stage['dropped']}")
    return {s["name"]: s for s in stats["stages"]}


def test_oss_instruct_demo(tmp_path):
    out = tmp_path / "oss"
    run_recipe("oss_instruct", "--config", REPO / "configs/oss_instruct/demo.yaml", "--output_dir", out)
    stages = funnel(out)
    assert stages["generate"]["rows_in"] == 32
    rows = pq.read_table(out / "data").to_pylist()
    assert len(rows) >= 3  # a real model often writes both sections and Python that parses
    for row in rows:
        assert row["problem"] and not refers_to_seed(row["problem"])
        ast.parse(solution_code(row["solution"], "python"))
        assert row["lang"] == "python" and row["source"].startswith("stdlib/")


def test_case2code_demo(tmp_path):
    out = tmp_path / "c2c"
    run_recipe("case2code", "--config", REPO / "configs/case2code/demo.yaml", "--output_dir", out)
    stages = funnel(out)
    assert stages["inputs"]["rows_in"] == stages["dedup_functions"]["rows_out"] >= 60  # every harvested function
    assert stages["parse_inputs"]["rows_out"] >= stages["inputs"]["rows_in"] // 2  # JSON lists of argument objects
    rows = pq.read_table(out / "data").to_pylist()
    assert len(rows) >= 5
    assert len({r["template"] for r in rows}) >= 3 and {r["template"] for r in rows} <= set(TEMPLATES)
    for row in rows:
        assert len(row["examples"]) >= 3 and len({e["output"] for e in row["examples"]}) > 1
        assert row["target"].lstrip().startswith(("def ", "import ", "from "))
