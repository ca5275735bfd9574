"""Magpie's tags and release columns without a model: reading the tagger's answers, the neighbour search, uuid,
language and the release filter. (Through the recipe with the tiny model: test_magpie_recipe.py.)"""

import json

import numpy as np
import pytest
from datasets import Dataset

from builders.dedup.embedding import nearest_neighbours
from builders.filters.checks import apply_checks
from builders.methods.magpie.release import language_code, release_checks, row_uuid
from builders.methods.magpie.tags import DIFFICULTIES, TAGS, TASK_CATEGORIES, read_tags, tag_checks

CATEGORY, DIFFICULTY, QUALITY = TAGS


def test_a_structured_answer_reads_into_magpies_columns():
    answer = '{"primary_tag":"Math","other_tags":["Reasoning","Math","Reasoning"]}'
    assert CATEGORY.read(answer) == (
        {"task_category": "Math", "other_task_category": ["Reasoning", "Math"]},  # repeats dropped, order kept
        None,
    )
    answer = '{"explanation":"Clear,\x01 but no units.","input_quality":"good"}'  # a control character kept
    assert QUALITY.read(answer) == ({"quality_explanation": "Clear,\x01 but no units.", "input_quality": "good"}, None)


def test_free_text_answers_are_read_when_they_hold_the_object():
    text = 'Sure.\n```json\n{"intent": "The user wants to sort a list", "knowledge": "sorting", "difficulty": "Easy"}\n```'
    values, reason = DIFFICULTY.read(text)
    assert reason is None and values["difficulty"] == "easy"  # the label as Magpie spells it
    assert values["intent"] == "The user wants to sort a list" and values["knowledge"] == "sorting"


@pytest.mark.parametrize(
    ("tag", "answer", "reason"),
    [
        (CATEGORY, "This is about maths.", "unparseable_task_category"),
        (CATEGORY, '{"primary_tag": "Math", "other_tags": ["Reaso', "unparseable_task_category"),  # cut off
        (CATEGORY, "", "unparseable_task_category"),
        (CATEGORY, None, "unparseable_task_category"),
        (CATEGORY, '["Math"]', "unparseable_task_category"),  # JSON, but not an object
        (CATEGORY, '{"primary_tag": "Maths", "other_tags": []}', "invalid_task_category"),  # not a category
        (CATEGORY, '{"primary_tag": "Math", "other_tags": "Reasoning"}', "invalid_task_category"),  # not a list
        (CATEGORY, '{"primary_tag": "Math", "other_tags": ["Cooking"]}', "invalid_task_category"),
        (DIFFICULTY, '{"intent": "x", "knowledge": "y", "difficulty": "trivial"}', "invalid_difficulty"),
        (DIFFICULTY, '{"intent": "x", "difficulty": "easy"}', "invalid_difficulty"),  # a key missing
        (QUALITY, '{"explanation": "  ", "input_quality": "good"}', "invalid_input_quality"),  # empty text
        (QUALITY, '{"explanation": "fine", "input_quality": 4}', "invalid_input_quality"),
    ],
)
def test_a_malformed_answer_is_a_drop_with_its_reason(tag, answer, reason):
    assert tag.read(answer) == (None, reason)


def test_malformed_answers_are_counted_not_raised():
    rows = Dataset.from_dict(
        {
            "_tag_answer": [
                '{"primary_tag": "Planning", "other_tags": []}',
                "no idea",
                '{"primary_tag": "x"}',
                "",
                '{"primary_tag": "Math", "other_t',
            ],
            "finish_reason": ["stop", "stop", "stop", "error", "length"],
        }
    )
    rows = rows.map(read_tags, batched=True, fn_kwargs={"tag": CATEGORY, "generator": "m"})
    kept, rejected, counts = apply_checks(rows, tag_checks(), desc="tags")
    assert kept["task_category"] == ["Planning"] and kept["task_category_generator"] == ["m"]
    assert dict(counts) == {
        "unparseable_task_category": 1,
        "invalid_task_category": 1,
        "tag_request_failed": 1,
        "truncated_task_category": 1,  # cut at the token limit: named so, the fix being the limit
    }


def test_schemas_allow_only_magpies_labels():
    schema = CATEGORY.schema()
    assert schema["properties"]["primary_tag"]["enum"] == list(TASK_CATEGORIES) and len(TASK_CATEGORIES) == 12
    assert schema["properties"]["other_tags"]["items"]["enum"] == list(TASK_CATEGORIES)
    assert schema["required"] == ["primary_tag", "other_tags"] and schema["additionalProperties"] is False
    difficulty = DIFFICULTY.schema(max_chars=40)["properties"]
    assert difficulty["difficulty"]["enum"] == list(DIFFICULTIES)
    assert difficulty["intent"] == {"type": "string", "maxLength": 40}
    assert QUALITY.schema()["properties"]["input_quality"]["enum"] == [
        "very poor",
        "poor",
        "average",
        "good",
        "excellent",
    ]
    json.dumps(schema)  # what the engine is sent


def test_prompts_show_the_query_and_the_labels():
    prompt = CATEGORY.prompt("How do I reverse a linked list in C?")
    assert "How do I reverse a linked list in C?" in prompt
    assert all(name in prompt for name in TASK_CATEGORIES)
    assert all(level in QUALITY.prompt("q") for level in ("very poor", "excellent"))
    assert all(level in DIFFICULTY.prompt("q") for level in DIFFICULTIES)


def brute_force(vectors, distance):
    """Magpie's definitions over the full n x n matrix (what the blocked search must equal)."""
    d = np.maximum(2 - 2 * vectors @ vectors.T, 0).astype(np.float64)
    np.fill_diagonal(d, np.inf)
    close = d < distance
    repeats = close.sum(axis=1)
    first = np.array([min(i, *np.flatnonzero(close[i])) if repeats[i] else -1 for i in range(len(d))])
    return d.min(axis=1), repeats, first


def test_neighbours_blocked_equal_the_full_matrix():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(40, 8)).astype(np.float32)
    # rows 40-49 repeat rows 0-9 closely, rows 50-52 repeat row 5 again: groups across blocks
    vectors = np.concatenate([base, base[:10] + 0.01 * rng.normal(size=(10, 8)), base[[5, 5, 5]]]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    nearest, repeats, first = nearest_neighbours(vectors, 0.05, block_size=7)
    want = brute_force(vectors, 0.05)
    np.testing.assert_allclose(nearest, want[0], atol=1e-5)
    assert repeats.tolist() == want[1].tolist() and first.tolist() == want[2].tolist()
    assert repeats[5] == 4 and first[[5, 45, 50, 52]].tolist() == [5, 5, 5, 5]  # the group's first row
    assert repeats[20] == 0 and first[20] == -1  # no repeats: no first


def test_one_row_has_no_neighbour():
    nearest, repeats, first = nearest_neighbours(np.ones((1, 4), dtype=np.float32) / 2, 0.05)
    assert np.isnan(nearest[0]) and repeats.tolist() == [0] and first.tolist() == [-1]


def test_uuid_is_the_same_in_every_run_and_differs_per_conversation():
    assert row_uuid("What is 2+2?", "4") == "fa195502-0dd1-547d-b33b-b3c9e5f23f11"
    assert row_uuid("What is 2+2?", "Four") != row_uuid("What is 2+2?", "4")


def test_language_as_magpie_writes_it():
    assert language_code("What is the best way to keep basil alive in a cold flat?") == "EN"
    assert language_code("今天天气很好，我们去了公园。") == "ZH"
    assert language_code("?!") is None


def test_release_filter_keeps_the_first_of_repeats_and_the_levels_asked():
    rows = Dataset.from_list(
        [
            {"uuid": "a", "min_similar_uuid": None, "input_quality": "good", "difficulty": "easy"},
            {"uuid": "b", "min_similar_uuid": "b", "input_quality": "excellent", "difficulty": "hard"},
            {"uuid": "c", "min_similar_uuid": "b", "input_quality": "excellent", "difficulty": "hard"},
            {"uuid": "d", "min_similar_uuid": None, "input_quality": "average", "difficulty": "hard"},
            {"uuid": "e", "min_similar_uuid": None, "input_quality": "good", "difficulty": "very easy"},
        ]
    )
    kept, _, counts = apply_checks(rows, release_checks("good", "easy", drop_repeats=True), desc="release")
    assert kept["uuid"] == ["a", "b"]
    assert dict(counts) == {"repeated_instruction": 1, "low_input_quality": 1, "too_easy": 1}
    assert release_checks() == []


def test_largest_rows_keeps_order_and_breaks_ties_by_position():
    from builders.dedup.stages import largest_rows

    rows = Dataset.from_dict({"id": list("abcdef"), "n": [5, 9, 5, 1, 9, 5]})
    result = largest_rows(rows, "n", 4, "shorter")
    assert result.kept["id"] == ["a", "b", "c", "e"]  # 9, 9, then the first two 5s, in their order
    assert result.removed["id"] == ["d", "f"] and result.dropped == {"shorter": 2}
    assert largest_rows(rows, "n", 6, "shorter").kept["id"] == list("abcdef")
