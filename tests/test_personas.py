"""Persona Hub's building blocks: prompt rows and lineage, parsing, and the two dedup steps for personas."""

import json
import tracemalloc

import numpy as np
import pytest
from datasets import Dataset

from builders.data import ROW_ID
from builders.dedup.embedding import embedding_dedup, near_duplicates
from builders.dedup.minhash import minhash_dedup
from builders.methods.persona_hub.personas import (
    clean_persona,
    parse_personas,
    persona_checks,
    persona_to_persona_rows,
    synthesis_rows,
    text_to_persona_rows,
)
from builders.methods.persona_hub.prompts import RELATIONS, TASKS, VIEWPOINTS, few_shot_examples, synthesis_prompt
from builders.methods.persona_hub.tools import TOOL_ERROR, parse_tool, parse_tool_rows

# Planted duplicates: 2 repeats 0 with its words reordered, 7 repeats 1 with one word added (both for MinHash on
# 1-grams); 4, 8 and 11 paraphrase 0, 6 and 10 in other words (for the embeddings). 3/5 and 10/12 are alike in
# form but different people (cosine 0.67 and 0.82 with all-MiniLM-L6-v2) and must both stay.
PERSONAS = [
    "A retired structural engineer who restores old wooden sailing boats in a coastal town in Maine.",
    "A marine biologist who studies coral bleaching on the Great Barrier Reef and dives every week.",
    "A retired structural engineer in a coastal town in Maine who restores old wooden sailing boats.",
    "A high school chemistry teacher who coaches the robotics team and bakes sourdough bread on weekends.",
    "A former structural engineer, now retired, who repairs antique wooden sailboats in a small Maine harbor town.",
    "A high school physics teacher who coaches the debate team and grows tomatoes on weekends.",
    "A jazz pianist who teaches improvisation to teenagers in New Orleans.",
    "A marine biologist who studies coral bleaching on the Great Barrier Reef and dives every single week.",
    "A jazz pianist in New Orleans who gives improvisation lessons to teenage students.",
    "A tax accountant who specializes in small family farms in rural Iowa.",
    "A pediatric nurse at a children's hospital who runs a weekly reading club for long-stay patients.",
    "A nurse working in a children's hospital who holds a reading club every week for children staying a long time.",
    "A children's hospital nurse in paediatrics who organises a weekly book club for patients on long stays.",
]


def test_minhash_with_the_papers_settings_removes_reworded_copies_only():
    ds = Dataset.from_dict({"persona": PERSONAS})
    kept, stats = minhash_dedup(ds, "persona", threshold=0.9, ngram=1, num_perm=128, seed=42)
    assert [PERSONAS.index(p) for p in kept["persona"]] == [0, 1, 3, 4, 5, 6, 8, 9, 10, 11, 12]
    assert stats["removed"] == 2


def test_embedding_dedup_removes_paraphrases_and_keeps_distinct_personas():
    ds = Dataset.from_dict({"persona": PERSONAS, "id": list(range(len(PERSONAS)))})
    after_minhash, _ = minhash_dedup(ds, "persona", threshold=0.9, ngram=1, num_perm=128, seed=42)
    kept, stats, removed = embedding_dedup(after_minhash, "persona", threshold=0.9, return_removed=True)
    assert kept["id"] == [0, 1, 3, 5, 6, 9, 10, 12]
    assert stats["removed"] == 3 and stats["embedding_seconds"] >= 0
    # each removed row points to the kept row it repeats (indices into the input of the stage)
    pairs = {r["id"]: after_minhash[r["duplicate_of"]]["id"] for r in removed}
    assert pairs == {4: 0, 8: 6, 11: 10}


def naive_near_duplicates(vectors, threshold):
    """The reference: the full n x n matrix, rows visited in order."""
    sims = vectors @ vectors.T
    kept, out = [], np.full(len(vectors), -1)
    for i in range(len(vectors)):
        if kept and sims[i, kept].max() >= threshold:
            out[i] = kept[int(np.argmax(sims[i, kept]))]
        else:
            kept.append(i)
    return out


@pytest.mark.parametrize("block_size,kept_block_size", [(1, 1), (7, 5), (64, 1000), (400, 400)])
def test_blocked_dedup_keeps_exactly_what_the_full_matrix_keeps(block_size, kept_block_size):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(50, 16))
    vectors = centres[rng.integers(0, 50, size=400)] + rng.normal(scale=0.3, size=(400, 16))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    expected = naive_near_duplicates(vectors, 0.9)
    got = near_duplicates(vectors, 0.9, block_size=block_size, kept_block_size=kept_block_size)
    assert 50 < (expected < 0).sum() < 350  # the data has both duplicates and distinct rows
    assert np.array_equal(got < 0, expected < 0)
    dup = got >= 0
    assert (got[dup] < np.flatnonzero(dup)).all()  # a duplicate points to an earlier row ...
    assert (got[got[dup]] < 0).all()  # ... that was kept
    assert (np.einsum("ij,ij->i", vectors[dup], vectors[got[dup]]) >= 0.9).all()


def test_blocked_dedup_memory_does_not_grow_with_n_squared():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(20_000, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    tracemalloc.start()
    near_duplicates(vectors, 0.999, block_size=512, kept_block_size=2048)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 40e6  # the full 20k x 20k matrix would take 1.6 GB


def test_text_to_persona_rows_record_the_source_and_the_viewpoint():
    batch = {"text": ["A recipe for sourdough.", "Notes on tensor calculus."], ROW_ID: [0, 1]}
    out = text_to_persona_rows(batch, text_column="text", viewpoints=list(VIEWPOINTS), seed=42, structured=False)
    assert out["source_text"] == batch["text"] and out["persona_id"] == [0, 1] and out["hop"] == [0, 0]
    assert all(v in VIEWPOINTS for v in out["relation"])
    assert "A recipe for sourdough." in out["prompt"][0] and "JSON" not in out["prompt"][0]
    structured = text_to_persona_rows(batch, text_column="text", viewpoints=["critic"], seed=42, structured=True)
    assert "JSON" in structured["prompt"][1] and structured["relation"] == ["critic", "critic"]


def test_persona_to_persona_rows_give_unique_ids_distinct_relations_and_lineage():
    frontier = {"persona": ["a baker", "a pilot"], "persona_id": [3, 8]}
    kwargs = dict(relations=list(RELATIONS), per_persona=3, seed=42, hop=2, first_id=100, structured=False)
    out = persona_to_persona_rows(frontier, [0, 1], **kwargs)
    assert out["persona_id"] == out[ROW_ID] == [100, 101, 102, 103, 104, 105]
    assert out["parent_id"] == [3, 3, 3, 8, 8, 8] and out["parent_persona"] == ["a baker"] * 3 + ["a pilot"] * 3
    assert out["hop"] == [2] * 6
    assert len(set(out["relation"][:3])) == 3 and set(out["relation"]) <= set(RELATIONS)
    assert RELATIONS[out["relation"][0]] in out["prompt"][0] and "a baker" in out["prompt"][0]
    assert persona_to_persona_rows(frontier, [0, 1], **kwargs) == out  # same seed, same rows
    other_hop = persona_to_persona_rows(frontier, [0, 1], **{**kwargs, "hop": 3})
    assert other_hop["relation"] != out["relation"]  # each hop draws again (fixed seed: this holds)


def test_synthesis_rows_draw_distinct_tasks_with_unique_row_ids_and_keep_lineage():
    pool = {
        "persona": ["a baker", "a pilot"],
        "persona_id": [0, 7],
        "hop": [0, 1],
        "parent_id": [None, 0],
        ROW_ID: [0, 7],
    }
    out = synthesis_rows(pool, tasks=list(TASKS), per_persona=2, few_shot=0, seed=42)
    assert out["persona"] == ["a baker", "a baker", "a pilot", "a pilot"] and out["parent_id"] == [None, None, 0, 0]
    assert len(set(out["task"][:2])) == 2 and len(set(out[ROW_ID])) == 4
    assert all(p.count("<persona>") == 1 for p in out["prompt"])  # zero-shot


def test_few_shot_prompts_hold_examples_from_other_personas():
    examples = few_shot_examples("math", "a baker", 2, seed=42, row_id=5)
    assert len(examples) == 2 and examples == few_shot_examples("math", "a baker", 2, seed=42, row_id=5)
    prompt = synthesis_prompt("math", "a baker", examples)
    assert prompt.count("<persona>") == 3 and examples[0]["output"] in prompt
    own = examples[0]["persona"]
    assert all(ex["persona"] != own for ex in few_shot_examples("math", own, 5, seed=1, row_id=1))


def test_persona_replies_are_cleaned_or_dropped_with_a_reason():
    assert clean_persona('**Persona:** "A beekeeper in Vermont."\nExtra line') == "A beekeeper in Vermont."
    assert clean_persona("1. A lighthouse keeper.") == "A lighthouse keeper."
    raw = {"generation": ['{"persona": "A ferry captain on Lake Geneva."}', '{"persona": "unfinished', "[1, 2]"]}
    parsed = parse_personas(raw, column="generation", structured=True)
    assert parsed["persona"][0] == "A ferry captain on Lake Geneva."
    assert parsed["_parse_error"] == [None, "unparseable", "unparseable"]

    checks = persona_checks(min_words=3, max_words=6, drop_truncated=True)

    def reason(**row):
        row = {"finish_reason": "stop", "_parse_error": None, "parent_persona": None, **row}
        return next((r for ok, r in (c(row) for c in checks) if not ok), None)

    assert reason(persona="A ferry captain") is None
    assert reason(persona="A captain") == "too_short"
    assert reason(persona="one two three four five six seven") == "too_long"
    assert reason(persona="A ferry captain", finish_reason="length") == "truncated"
    assert reason(persona="", _parse_error="unparseable") == "unparseable"
    assert reason(persona="A ferry captain!", parent_persona="a ferry CAPTAIN") == "copies_parent"


TOOL = {
    "name": "assign_berth",
    "description": "Reserve a free berth for an arriving boat.",
    "parameters": {
        "type": "object",
        "properties": {"boat": {"type": "string", "description": "its name"}, "hours": {"type": "integer"}},
        "required": ["boat"],
    },
}


def test_a_tool_definition_is_read_from_json_or_from_a_fenced_reply():
    compact = json.dumps(TOOL)
    assert parse_tool(json.dumps(TOOL, indent=2)) == (compact, None)
    assert parse_tool(f"Here is the tool:\n```json\n{json.dumps(TOOL)}\n```") == (compact, None)


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("I would build a berth planner.", "tool_unparseable"),
        ('{"name": "assign_berth", "description": ', "tool_unparseable"),
        (json.dumps({**TOOL, "name": "assign berth!"}), "tool_without_name"),
        (json.dumps({**TOOL, "description": " "}), "tool_without_description"),
        (json.dumps({**TOOL, "parameters": {"type": "array"}}), "tool_parameters_not_object"),
        (json.dumps({**TOOL, "parameters": {"type": "object", "properties": {"boat": {}}}}), "tool_argument_untyped"),
        (
            json.dumps({**TOOL, "parameters": {**TOOL["parameters"], "required": ["owner"]}}),
            "tool_requires_undefined_argument",
        ),
        (
            json.dumps({**TOOL, "parameters": {**TOOL["parameters"], "required": [{"boat": 1}]}}),
            "tool_requires_undefined_argument",
        ),
    ],
)
def test_a_broken_tool_definition_is_a_drop_with_its_reason(raw, reason):
    assert parse_tool(raw) == ("", reason)


def test_only_tool_rows_are_read_as_definitions():
    batch = {"task": ["math", "tool", "tool"], "output": ["What is 2 + 2?", json.dumps(TOOL), "no json"]}
    out = parse_tool_rows(batch)
    assert out["output"] == ["What is 2 + 2?", json.dumps(TOOL), "no json"]  # a broken one keeps what was written
    assert out[TOOL_ERROR] == [None, None, "tool_unparseable"]
