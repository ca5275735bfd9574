"""The generic recipe (recipes/generate.py) through the real vLLM engine with the tiny model."""

import json

import pytest
import yaml
from datasets import load_dataset

from conftest import REPO, recipe_error, run_recipe, write_jsonl

pytestmark = pytest.mark.vllm
SMOKE = REPO / "configs" / "generate" / "smoke.yaml"


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    rows = [{"text": f"Passage {i}: rivers carry water to the sea.", "lang": "en"} for i in range(6)]
    return write_jsonl(tmp_path_factory.mktemp("docs") / "docs.jsonl", rows)


def config(tmp_path, **values):
    base = yaml.safe_load(SMOKE.read_text())
    base.pop("steps")
    base.update(values)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


def test_two_step_chain_uses_the_first_steps_output(tmp_path):
    out = tmp_path / "chain"
    run_recipe("generate", "--config", SMOKE, "--output_dir", out)
    ds = load_dataset(str(out), split="train")
    assert {"text", "question", "answer", "finish_reason"} <= set(ds.column_names)
    stats = json.loads((out / "stats.json").read_text())
    names = [s["name"] for s in stats["stages"]]
    assert names[:5] == ["input", "step1-question", "filter-question", "step2-answer", "filter-answer"]
    prompts = sorted((out / ".checkpoints").rglob("step2-answer/*.parquet"))
    import pyarrow.parquet as pq

    table = pq.read_table(prompts[0]).to_pydict()
    assert all(p.endswith(q.strip()) for p, q in zip(table["_prompt"], table["question"]))  # step 2 saw step 1


def test_two_step_chain_with_n_samples_at_each_step(docs, tmp_path):
    steps = [
        {"template": "Ask about {{ text }}", "output_column": "question", "n": 2},
        {"template": "Answer {{ question }}", "output_column": "answer", "n": 2},
    ]
    cfg = config(tmp_path, dataset=str(docs), num_samples=2, max_new_tokens=4, steps=steps, dedup=False)
    run_recipe("generate", "--config", cfg, "--output_dir", tmp_path / "out")
    ds = load_dataset(str(tmp_path / "out"), split="train")
    assert len(ds) == 8  # 2 rows x 2 questions x 2 answers
    assert ds["sample_index"] == [0, 1] * 4  # the answer's sample, not the question's as well
    assert ds["question"][::2] == ds["question"][1::2] and len(set(ds["question"])) == 4


def test_n_samples_as_rows_or_as_a_list(docs, tmp_path):
    cfg = config(tmp_path, dataset=str(docs), template="Say something about {{ text }}", n=3, dedup=False)
    run_recipe("generate", "--config", cfg, "--output_dir", tmp_path / "rows")
    rows = load_dataset(str(tmp_path / "rows"), split="train")
    assert len(rows) == 18 and rows["sample_index"][:3] == [0, 1, 2]
    run_recipe("generate", "--config", cfg, "--output_dir", tmp_path / "lists", "--samples_as_list", "true")
    lists = load_dataset(str(tmp_path / "lists"), split="train")
    assert len(lists) == 6
    assert all(len(g) == 3 for g in lists["generation"])
    assert lists["text"] == load_dataset("json", data_files=str(docs), split="train")["text"]
    assert [g for group in lists["generation"] for g in group] == rows["generation"]


def test_structured_choice_and_json_schema(docs, tmp_path):
    choice = config(
        tmp_path,
        dataset=str(docs),
        template="Is this about water? {{ text }}",
        max_new_tokens=8,
        structured_output={"choice": ["yes", "no"]},
        dedup=False,
    )
    run_recipe("generate", "--config", choice, "--output_dir", tmp_path / "choice")
    assert set(load_dataset(str(tmp_path / "choice"), split="train")["generation"]) <= {"yes", "no"}

    schema = {
        "type": "object",
        "properties": {
            "topic": {"type": "string", "maxLength": 20},
            "score": {"type": "integer", "minimum": 0, "maximum": 10},
        },
        "required": ["topic", "score"],
        "additionalProperties": False,
    }
    structured = config(
        tmp_path,
        dataset=str(docs),
        template="Label: {{ text }}",
        max_new_tokens=60,
        structured_output={"json": schema},
        dedup=False,
    )
    run_recipe("generate", "--config", structured, "--output_dir", tmp_path / "structured")
    ds = load_dataset(str(tmp_path / "structured"), split="train")
    stats = json.loads((tmp_path / "structured" / "stats.json").read_text())
    dropped = next(s for s in stats["stages"] if s["name"] == "filter-generation")["dropped"]
    assert len(ds) + dropped.get("unparseable_json", 0) + dropped.get("truncated", 0) == 6
    assert len(ds) >= 1  # the grammar forces valid JSON unless max_new_tokens cuts it
    for row in ds:
        assert json.loads(row["generation"]) == {"topic": row["topic"], "score": row["score"]}
        assert isinstance(row["score"], int)


def test_template_errors_name_the_problem(docs, tmp_path, capsys):
    base = ["--config", config(tmp_path, dataset=str(docs)), "--output_dir", tmp_path / "o"]
    message = recipe_error(capsys, "generate", *base, "--template", "Summarise {{ body }}")
    assert "uses column 'body', which does not exist; the columns are text, lang" in message
    assert "not a valid Jinja template" in recipe_error(capsys, "generate", *base, "--template", "Broken {{ text ")
    assert "does not exist" in recipe_error(capsys, "generate", *base, "--template", "prompts/missing.jinja")
    assert "no prompt template" in recipe_error(capsys, "generate", *base)
    steps_cfg = config(
        tmp_path, dataset=str(docs), steps=[{"template": "{{ text }}", "output_column": "a", "tempo": 1}]
    )
    assert "steps[0] has unknown key 'tempo'" in recipe_error(
        capsys, "generate", "--config", steps_cfg, "--output_dir", tmp_path / "o"
    )
    clash = config(tmp_path, dataset=str(docs), steps=[{"template": "{{ text }}", "output_column": "text"}])
    assert "would overwrite column 'text'" in recipe_error(
        capsys, "generate", "--config", clash, "--output_dir", tmp_path / "o"
    )
    assert not (tmp_path / "o").exists()


def test_single_step_keys_beside_steps_are_an_error(docs, tmp_path, capsys):
    steps = [{"template": "{{ text }}", "output_column": "summary"}]
    for key, value in [("n", 2), ("output_column", "answer"), ("structured_output", {"choice": ["yes", "no"]})]:
        cfg = config(tmp_path, dataset=str(docs), steps=steps, **{key: value})
        message = recipe_error(capsys, "generate", "--config", cfg, "--output_dir", tmp_path / "o")
        assert f"`{key}` applies to `template` only; with `steps`, set it in each step" in message
    assert not (tmp_path / "o").exists()
