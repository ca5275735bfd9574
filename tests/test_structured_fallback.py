"""Recipes whose structured output is vLLM's, run against a server that is not vLLM: the requests go without it,
one line per setting says so, and the free-text answers are parsed. Each recipe runs against the scripted server
(tests/scripted_server.py) twice: listed as owned by "vllm" (structured output sent) and with no owner (none sent).
Seed curation's test is in tests/test_openai_engine.py."""

import json
import re

import pyarrow.parquet as pq
import pytest
import yaml
from scripted_server import ScriptedServer, last_user_message

from builders.methods.persona_hub.prompts import PERSONA_SCHEMA
from conftest import REPO, run_recipe, stages_of, write_jsonl

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
        "self_instruct",
        owner,
        self_instruct_reply,
        caplog,
        "--config",
        REPO / "configs" / "self_instruct" / "smoke.yaml",
        "--output_dir",
        out,
        "--mode",
        "self_instruct",
        "--num_instructions_to_generate",
        4,
        "--list_regex",
        list_regex,
        "--instance_regex",
        instance_regex,
    )
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
        "case2code",
        owner,
        lambda body: CASE2CODE_REPLIES[owner],
        caplog,
        "--config",
        REPO / "configs" / "case2code" / "smoke.yaml",
        "--output_dir",
        out,
        "--dataset",
        tmp_path / "code",
        "--include",
        "[]",
    )
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
        "persona_hub",
        owner,
        persona_reply,
        caplog,
        "--config",
        REPO / "configs" / "persona_hub" / "smoke.yaml",
        "--output_dir",
        out,
        "--stages",
        "text_to_persona",
        "--num_samples",
        3,
        "--persona_format",
        "json",
        "--persona_dedup",
        "false",
    )
    if owner == "vllm":
        assert sent == [{"json": PERSONA_SCHEMA}] * 3 and notes == []
    else:
        assert sent == [None] * 3
        assert notes == [note("persona_format", url, "set persona_format: text")]
    assert pq.read_table(out / "data")["persona"].to_pylist() == [PERSONA] * 3


# -- Generate: a step's `structured_output` (a choice, a JSON schema) -------------------------------------------

SCHEMA = {"type": "object", "properties": {"topic": {"type": "string"}, "score": {"type": "integer"}}}


def generate_reply(body):
    """As vLLM would answer when the request asks for a shape; else free text, some of which fits."""
    prompt = last_user_message(body)
    i = int(re.search(r"Passage (\d+)", prompt).group(1))
    if prompt.startswith("Is this about water?"):
        free = ["**Yes**, it is about water.", "no.", "It might be."][i % 3]
        return ["yes", "no"][i % 2] if structured_of(body) else free
    free = ['Here it is:\n```json\n{"topic": "rivers", "score": 7}\n```', "The topic is rivers."][i % 2]
    return '{"topic": "rivers", "score": 7}' if structured_of(body) else free


@pytest.mark.parametrize("owner", OWNERS)
def test_generate_holds_free_text_answers_to_the_choice_and_the_schema(owner, tmp_path, caplog):
    docs = write_jsonl(tmp_path / "docs.jsonl", [{"text": f"Passage {i}: rivers carry water."} for i in range(6)])
    steps = [
        {
            "template": "Is this about water? {{ text }}",
            "output_column": "label",
            "structured_output": {"choice": ["yes", "no"]},
        },
        {"template": "Label: {{ text }}", "output_column": "info", "structured_output": {"json": SCHEMA}},
    ]
    config = yaml.safe_load((REPO / "configs" / "generate" / "smoke.yaml").read_text())
    config.update(dataset=str(docs), steps=steps, dedup=False, output_dir=str(tmp_path / "out"))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    sent, notes, url = run_scripted("generate", owner, generate_reply, caplog, "--config", tmp_path / "config.yaml")
    stages = stages_of(tmp_path / "out")
    rows = pq.read_table(tmp_path / "out" / "data").to_pylist()
    if owner == "vllm":
        assert sent == [{"choice": ["yes", "no"]}] * 6 + [{"json": SCHEMA}] * 6 and notes == []
        assert len(rows) == 6
    else:
        assert sent == [None] * 10  # 6 labels, then the 4 rows that fit
        assert notes == [note("steps[0].structured_output", url), note("steps[1].structured_output", url)]
        assert stages["filter-label"]["dropped"] == {"not_a_choice": 2}  # "It might be."
        assert stages["filter-info"]["dropped"] == {"unparseable_json": 2}  # "The topic is rivers."
        assert [(r["text"][:9], r["label"]) for r in rows] == [("Passage 0", "yes"), ("Passage 4", "no")]
    assert all(r["label"] in ("yes", "no") and (r["topic"], r["score"]) == ("rivers", 7) for r in rows)
    assert all(json.loads(r["info"]) == {"topic": "rivers", "score": 7} for r in rows)


def test_generate_refuses_a_regex_python_cannot_read_before_any_generation(tmp_path, capsys):
    docs = write_jsonl(tmp_path / "docs.jsonl", [{"text": "Passage 0: rivers carry water."}])
    out = tmp_path / "out"
    with ScriptedServer() as server, pytest.raises(SystemExit) as exit_:
        run_recipe(
            "generate",
            "--config",
            REPO / "configs" / "generate" / "smoke.yaml",
            "--dataset",
            docs,
            "--steps",
            "[]",
            "--template",
            "Code for {{ text }}",
            "--structured_output",
            '{regex: "[a-z"}',
            "--output_dir",
            out,
            "--backend",
            "openai",
            "--base_url",
            server.url,
        )
    assert exit_.value.code == 2 and server.bodies == [] and not out.exists()
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: structured_output: the engine has no structured output")


# -- Instructions from documents: `constrain_list` -------------------------------------------------------------

VERBS = ["Explain", "Summarise", "List", "Question", "Compare"]


def requests_reply(body):
    topic = last_user_message(body).split("<document>")[1].split()[0]  # lists differ between documents
    return "\n".join(f"{k}. {verb} what the document says about {topic} here." for k, verb in enumerate(VERBS, 1))


@pytest.mark.parametrize("owner", OWNERS)
def test_instructions_from_documents_lists_are_parsed_without_structured_output(owner, tmp_path, caplog):
    out = tmp_path / "out"
    sent, notes, url = run_scripted(
        "instructions_from_documents",
        owner,
        requests_reply,
        caplog,
        "--config",
        REPO / "configs" / "instructions_from_documents" / "smoke.yaml",
        "--output_dir",
        out,
        "--answer",
        "false",
    )
    if owner == "vllm":
        assert len(sent) == 6 and all(set(s) == {"regex"} for s in sent) and notes == []
    else:
        assert sent == [None] * 6
        assert notes == [note("constrain_list", url, "set constrain_list: false")]
    stages = stages_of(out)
    assert stages["parse-lists"]["rows_out"] == 6 and stages["split-lists"]["rows_out"] == 6 * len(VERBS)
