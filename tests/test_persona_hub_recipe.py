"""The Persona Hub recipe end to end through the real vLLM engine (tiny random model; SmolLM2 in the slow test)."""

import json

import pyarrow.parquet as pq
import pytest
from datasets import load_dataset
from scripted_server import ScriptedServer, last_user_message

from builders.methods.persona_hub.personas import PERSONA_COLUMNS
from builders.methods.persona_hub.prompts import RELATIONS, TASKS, VIEWPOINTS
from conftest import REPO, recipe_error, run_recipe, shipped_data, stats_of, write_jsonl

pytestmark = pytest.mark.vllm
SMOKE = str(REPO / "configs" / "persona_hub" / "smoke.yaml")
DEMO = str(REPO / "configs" / "persona_hub" / "demo.yaml")
SYNTHESIS_COLUMNS = [*PERSONA_COLUMNS[:-1], "task", "prompt", "output", "finish_reason"]


def alpaca_outputs(n):
    return [r["output"] for r in json.loads(shipped_data("alpaca_5000.json").read_text())[:n]]


def stage(stats, name):
    return next(s for s in stats["stages"] if s["name"] == name)


@pytest.fixture(scope="module")
def smoke_output(tmp_path_factory):
    out = tmp_path_factory.mktemp("persona") / "out"
    run_recipe("persona_hub", "--config", SMOKE, "--output_dir", out)
    return out


def test_smoke_run_writes_personas_with_their_origin_and_synthesized_data(smoke_output):
    ds = load_dataset(str(smoke_output), split="train")
    assert ds.column_names == SYNTHESIS_COLUMNS and len(ds) > 0
    docs = alpaca_outputs(6)
    for row in ds:
        assert row["task"] in TASKS and row["persona"] in row["prompt"]
        if row["hop"] == 0:
            assert row["source_text"] in docs and row["relation"] in VIEWPOINTS and row["parent_id"] is None
        else:
            assert row["source_text"] is None and row["relation"] in RELATIONS and row["parent_persona"]
    assert set(ds["hop"]) <= {0, 1, 2}

    stats = stats_of(smoke_output)
    names = [s["name"] for s in stats["stages"]]
    assert names == [
        "input",
        "text_to_persona",
        "text_to_persona_filter",
        "persona_to_persona_1",
        "persona_to_persona_1_filter",
        "persona_to_persona_2",
        "persona_to_persona_2_filter",
        "persona_pool",
        "persona_minhash",
        "persona_embedding",
        "synthesis_prompts",
        "synthesize",
        "synthesize_tool",  # every task is drawn here, the tool task among them: generated apart
        "synthesize_filter",
        "output_dedup",
    ]
    for s in stats["stages"]:
        assert s["rows_in"] - s["rows_out"] == sum(s["dropped"].values()) or s["name"] == "synthesis_prompts"
    pool = stage(stats, "persona_pool")
    assert sum(pool["details"]["by_hop"].values()) == pool["rows_out"] == stage(stats, "persona_minhash")["rows_in"]
    assert stage(stats, "persona_embedding")["details"]["model"] == "all-minilm-l6-v2"
    assert "## Personas by hop" in (smoke_output / "README.md").read_text()


def test_persona_expansion_follows_hops_and_records_lineage(tmp_path):
    out = tmp_path / "pool"
    args = ["--stages", "text_to_persona,persona_to_persona", "--hops", 3, "--relations_per_persona", 2]
    run_recipe(
        "persona_hub", "--config", SMOKE, "--output_dir", out, "--num_samples", 3, "--persona_dedup", "false", *args
    )
    pool = load_dataset(str(out), split="train")
    assert pool.column_names == PERSONA_COLUMNS[:-1]  # no synthesis columns
    by_id = {row["persona_id"]: row for row in pool}
    assert len(by_id) == len(pool)
    docs = alpaca_outputs(3)
    children = {}
    for row in pool:
        if row["hop"] == 0:
            assert row["source_text"] in docs and row["parent_id"] is None
            continue
        parent = by_id[row["parent_id"]]
        assert parent["hop"] == row["hop"] - 1 and row["parent_persona"] == parent["persona"]
        children.setdefault(row["parent_id"], []).append(row["relation"])
        root = row
        while root["hop"] > 0:
            root = by_id[root["parent_id"]]
        assert root["source_text"] in docs
    assert all(len(rel) <= 2 and len(set(rel)) == len(rel) for rel in children.values())
    hops = [pool["hop"].count(h) for h in range(4)]
    assert all(hops[h + 1] <= 2 * hops[h] for h in range(3)) and hops[3] > 0

    stats = stats_of(out)
    for hop in (1, 2, 3):
        frontier = stage(stats, "text_to_persona_filter" if hop == 1 else f"persona_to_persona_{hop - 1}_filter")
        assert stage(stats, f"persona_to_persona_{hop}")["rows_in"] == 2 * frontier["rows_out"]
        assert stage(stats, f"persona_to_persona_{hop}_filter")["rows_out"] == hops[hop]
    assert "persona_minhash" not in [s["name"] for s in stats["stages"]]


def test_structured_personas_parse_or_are_dropped_with_a_reason(tmp_path):
    out = tmp_path / "json-personas"  # not "json": datasets caches local folders by their basename
    run_recipe(
        "persona_hub",
        "--config",
        SMOKE,
        "--output_dir",
        out,
        "--stages",
        "text_to_persona",
        "--num_samples",
        4,
        "--persona_format",
        "json",
        "--persona_max_new_tokens",
        64,
        "--persona_dedup",
        "false",
    )
    filtered = stage(stats_of(out), "text_to_persona_filter")
    assert filtered["rows_in"] == 4
    assert set(filtered["dropped"]) <= {"unparseable", "empty", "too_short", "too_long"}
    # The tiny random model may leave every JSON object unfinished: read the shard itself, which `load_dataset`
    # refuses when it holds no rows.
    personas = pq.read_table(out / "data" / "train-00000-of-00001.parquet")["persona"].to_pylist()
    assert len(personas) == filtered["rows_out"] and not any(p.startswith("{") for p in personas)


def test_synthesis_alone_uses_given_personas_and_few_shot_examples(tmp_path):
    personas = ["A beekeeper in Vermont who sells honey at markets.", "A lighthouse keeper on a Scottish island."]
    data = write_jsonl(tmp_path / "personas.jsonl", [{"persona": p} for p in personas])
    out = tmp_path / "synth"
    run_recipe(
        "persona_hub",
        "--config",
        SMOKE,
        "--output_dir",
        out,
        "--dataset",
        data,
        "--stages",
        "synthesize",
        "--tasks",
        "math,npc",
        "--tasks_per_persona",
        2,
        "--few_shot",
        1,
    )
    names = [s["name"] for s in stats_of(out)["stages"]]
    assert names == ["input", "synthesis_prompts", "synthesize", "synthesize_filter", "output_dedup"]
    assert stage(stats_of(out), "synthesis_prompts")["rows_out"] == 4
    ds = load_dataset(str(out), split="train")
    assert set(ds["persona"]) <= set(personas) and set(ds["task"]) <= {"math", "npc"}
    assert all(r["hop"] == 0 and r["source_text"] is None and r["prompt"].count("<persona>") == 2 for r in ds)


def test_tool_task_is_generated_apart_under_the_tool_schema(tmp_path):
    personas = ["A harbour master who assigns berths to fishing boats.", "A school bus dispatcher in a snowy town."]
    data = write_jsonl(tmp_path / "personas.jsonl", [{"persona": p} for p in personas])
    out = tmp_path / "tools"
    args = ["--dataset", data, "--stages", "synthesize", "--tasks", "math,tool", "--tasks_per_persona", 2]
    run_recipe("persona_hub", "--config", SMOKE, "--output_dir", out, *args, "--keep_rejected")
    stats = stats_of(out)
    assert stage(stats, "synthesize")["rows_in"] == 2 and stage(stats, "synthesize_tool")["rows_in"] == 2
    ds = load_dataset(str(out), split="train")
    assert ds["persona"] == sorted(ds["persona"], key=personas.index)  # the two parts merged back in persona order
    # The tiny model writes noise, cut at 32 tokens: only structured output makes that noise open a definition.
    rejected = [json.loads(r["row"]) for r in pq.read_table(out / "rejected").to_pylist()]
    tools = [r for r in rejected if r["task"] == "tool"]
    assert len(tools) == 2 and all(r["output"].startswith('{"name":"') for r in tools)
    assert stage(stats, "synthesize_filter")["dropped"] == {"tool_unparseable": 2}


def test_tool_definitions_from_a_server_are_checked_and_written_as_json(tmp_path):
    personas = ["A harbour master who assigns berths to fishing boats.", "A school bus dispatcher in a snowy town."]
    data = write_jsonl(tmp_path / "personas.jsonl", [{"persona": p} for p in personas])
    tool = {
        "name": "assign_berth",
        "description": "Reserve a berth that fits an arriving boat.",
        "parameters": {"type": "object", "properties": {"boat": {"type": "string", "description": "its name"}}},
    }
    broken = {**tool, "parameters": {**tool["parameters"], "required": ["route"]}}  # requires what it never defines

    def reply(body):  # a server without structured output: free text, a fenced definition
        definition = tool if "harbour" in last_user_message(body) else broken
        return f"Here is the tool:\n```json\n{json.dumps(definition, indent=2)}\n```"

    out = tmp_path / "tools"
    args = ["--dataset", data, "--stages", "synthesize", "--tasks", "tool", "--backend", "openai"]
    with ScriptedServer(reply=reply) as server:
        run_recipe("persona_hub", "--config", SMOKE, "--output_dir", out, *args, "--base_url", server.url)
    ds = load_dataset(str(out), split="train")
    assert ds["output"] == [json.dumps(tool)] and ds["persona"] == personas[:1]
    assert stage(stats_of(out), "synthesize_filter")["dropped"] == {"tool_requires_undefined_argument": 1}


def test_bad_stage_and_task_names_exit_2(tmp_path, capsys):
    base = ["--config", SMOKE, "--output_dir", tmp_path / "o"]
    assert "must follow the order" in recipe_error(
        capsys, "persona_hub", *base, "--stages", "synthesize,text_to_persona"
    )
    assert "unknown value 'write'" in recipe_error(capsys, "persona_hub", *base, "--stages", "write")
    assert "unknown value 'poem'" in recipe_error(capsys, "persona_hub", *base, "--tasks", "math,poem")
    assert "has no column 'persona'" in recipe_error(capsys, "persona_hub", *base, "--stages", "synthesize")
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
@pytest.mark.timeout(1800)  # four generation rounds: minutes on an idle 2-core machine, many more on a busy one
def test_demo_with_smollm2_makes_real_personas_and_data(tmp_path):
    out = tmp_path / "demo"
    run_recipe("persona_hub", "--config", DEMO, "--output_dir", out)
    stats = stats_of(out)
    pool = stage(stats, "persona_pool")["rows_out"]
    after = stage(stats, "persona_embedding")["rows_out"]
    # SmolLM2 repeats itself: measured 75 personas -> 57 after MinHash -> 36 after embedding dedup (2026-12-04)
    assert pool >= 40 and after >= pool // 3
    ds = load_dataset(str(out), split="train")
    assert len(ds) >= after // 2
    assert sum(len(p.split()) >= 8 for p in ds["persona"]) >= len(ds) * 0.8  # descriptions, not one-word labels
    # about six personas per task: all but one task reach the output (a 135M model runs long articles or tool
    # definitions past max_new_tokens, and a truncated row is dropped); measured 2026-12-07: all but knowledge
    assert len({r["task"] for r in ds}) >= len(TASKS) - 1 and {r["task"] for r in ds} <= set(TASKS)
