"""Recipes whose structured output is vLLM's, run against a server that is not vLLM: the requests go without it,
one line per setting says so, and the free-text answers are parsed. Each recipe runs against the scripted server
(tests/scripted_server.py) twice: listed as owned by "vllm" (structured output sent) and with no owner (none sent).
Seed curation's test is in tests/test_openai_engine.py."""

import json

import pyarrow.parquet as pq
import pytest
from scripted_server import ScriptedServer, last_user_message

from builders.prompts.persona_hub import PERSONA_SCHEMA
from conftest import REPO, run_recipe

OWNERS = ["vllm", None]


def run_scripted(recipe, owner, reply, caplog, *args):
    """Run `recipe` against a scripted server; (the structured output of each request, the notes, the server URL)."""
    with ScriptedServer(reply=reply, owned_by=owner) as server:
        run_recipe(recipe, *args, "--backend", "openai", "--base_url", server.url)
    sent = [structured_of(body) for _, body in server.bodies]
    notes = [r.getMessage() for r in caplog.records if "offers no structured output" in r.getMessage()]
    return sent, notes, server.url


def structured_of(body):
    """What a request asked for: vLLM's `structured_outputs`, a `response_format` JSON schema, or None."""
    if "response_format" in body:
        return {"json": body["response_format"]["json_schema"]["schema"]}
    return body.get("structured_outputs")


def note(what, url, off=None):
    skip = f" ({off} to skip this note)" if off else ""
    return (
        f"{what}: the server at {url} offers no structured output (vLLM's is the one used); "
        f"the answers are parsed as free text{skip}"
    )


def stages_of(out):
    return {s["name"]: s for s in json.loads((out / "stats.json").read_text())["stages"]}


# -- Self-Instruct: the task lists, the Yes/No classification, the instances -----------------------------------

TASKS = {  # instruction -> is it a classification task
    "Decide whether the given chess move is legal or illegal.": True,
    "Tell if the given bird call belongs to an owl or a crow.": True,
    "Suggest three names for a bakery that sells only sourdough bread.": False,
    "Explain why the ocean tides rise twice every day.": False,
}


def self_instruct_reply(body):
    prompt = last_user_message(body)
    task = prompt.rsplit("Task: ", 1)[-1].split("\n")[0]
    if prompt.startswith("Below is a list of tasks"):
        return "\n".join(f"{9 + i}. {t}" for i, t in enumerate(TASKS))
    if prompt.startswith("Decide whether"):
        return "Yes." if TASKS[task] else "No, it asks for free text."
    if TASKS[task]:  # output first
        return "Class label: yes\nInput: the first sample\nClass label: no\nInput: the second sample"
    return "Example 1\nInput: <noinput>\nOutput: the first answer\nExample 2\nInput: a detail\nOutput: the second"


@pytest.mark.parametrize("owner", OWNERS)
def test_self_instruct_classifies_from_free_text_without_structured_output(owner, tmp_path, caplog):
    out = tmp_path / "si"
    list_regex, instance_regex = r"(\d+\. .+\n)+", r"(.+\n)+"
    sent, notes, url = run_scripted(
        "self_instruct", owner, self_instruct_reply, caplog,
        "--config", REPO / "configs" / "self_instruct" / "smoke.yaml", "--output_dir", out, "--mode", "self_instruct",
        "--num_instructions_to_generate", 4, "--list_regex", list_regex, "--instance_regex", instance_regex,
    )  # fmt: skip
    asked = [{"regex": list_regex}] * 4 + [{"choice": ["Yes", "No"]}] * 4 + [{"regex": instance_regex}] * 4
    if owner == "vllm":
        assert sent == asked and notes == []
    else:
        assert sent == [None] * 12
        assert notes == [
            note("list_regex", url, "remove list_regex"),
            note("classify", url),
            note("instance_regex", url, "remove instance_regex"),
        ]
    rows = pq.read_table(out / "data").to_pylist()
    assert {r["instruction"]: r["is_classification"] for r in rows} == TASKS
    assert len(rows) == 8 and stages_of(out)["classification"]["dropped"] == {}


# -- Case2Code: `inputs_format: json` ---------------------------------------------------------------------------

ANY_VALUE = """
def kind(value):
    return type(value).__name__


def wrap(value):
    return [value, value]
"""
INPUTS = '{"value": 1}, {"value": "two"}, {"value": [3, 4]}'
# A vLLM server's answer follows the pattern, which opens the list; without it the answer continues the python
# format's prefill (an open list in a code block), and parses only when the recipe reads it with the prefill.
CASE2CODE_REPLIES = {"vllm": f"[{INPUTS}]", None: f"{INPUTS}]\n```"}


@pytest.mark.parametrize("owner", OWNERS)
def test_case2code_json_inputs_fall_back_to_the_python_format(owner, tmp_path, caplog):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "any_value.py").write_text(ANY_VALUE)
    out = tmp_path / "out"
    sent, notes, url = run_scripted(
        "case2code", owner, lambda body: CASE2CODE_REPLIES[owner], caplog,
        "--config", REPO / "configs" / "case2code" / "smoke.yaml", "--output_dir", out,
        "--dataset", tmp_path / "code", "--include", "[]",
    )  # fmt: skip
    assert len(sent) == 2  # one answer per function
    if owner == "vllm":
        assert all(set(s) == {"regex"} for s in sent) and notes == []
    else:
        assert sent == [None, None]
        assert notes == [note("inputs_format", url, "set inputs_format: python")]
    rows = pq.read_table(out / "data").to_pylist()
    assert sorted(r["name"] for r in rows) == ["kind", "wrap"]
    for row in rows:
        assert sorted(e["input"] for e in row["examples"]) == ["{'value': 'two'}", "{'value': 1}", "{'value': [3, 4]}"]


# -- Persona Hub: `persona_format: json` ------------------------------------------------------------------------

PERSONA = "A lighthouse keeper who paints the storms she watches at night"


def persona_reply(body):
    """JSON when the prompt asks for it, else a labelled line of text."""
    prompt = last_user_message(body)
    return json.dumps({"persona": PERSONA}) if "JSON object" in prompt else f"Persona: {PERSONA}"


@pytest.mark.parametrize("owner", OWNERS)
def test_persona_hub_json_personas_fall_back_to_text(owner, tmp_path, caplog):
    out = tmp_path / "out"
    sent, notes, url = run_scripted(
        "persona_hub", owner, persona_reply, caplog,
        "--config", REPO / "configs" / "persona_hub" / "smoke.yaml", "--output_dir", out,
        "--stages", "text_to_persona", "--num_samples", 3, "--persona_format", "json", "--persona_dedup", "false",
    )  # fmt: skip
    if owner == "vllm":
        assert sent == [{"json": PERSONA_SCHEMA}] * 3 and notes == []
    else:
        assert sent == [None] * 3
        assert notes == [note("persona_format", url, "set persona_format: text")]
    assert pq.read_table(out / "data")["persona"].to_pylist() == [PERSONA] * 3
