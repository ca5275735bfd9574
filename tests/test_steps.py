"""Generation steps of the generic recipe (builders/methods/generate_steps/steps.py): JSON fields as typed columns, and free-text
answers held to the shape structured output would have given them."""

import pytest
from datasets import Dataset, Value

from builders.errors import UserError
from builders.methods.generate_steps.steps import (
    check_regex,
    fit_answer,
    fit_batch,
    parse_json_batch,
    parse_step,
    parsed_features,
)

SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "number"},
        "note": {"type": ["string", "null"]},
        "count": {"type": "integer"},
        "ok": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}


def test_json_fields_keep_the_schemas_types_when_the_values_drift_across_map_batches():
    step = parse_step({"template": "{{ text }}", "output_column": "out", "structured_output": {"json": SCHEMA}}, 0)
    outputs = Dataset.from_dict(
        {
            "out": [
                '{"score": 1, "note": null, "count": 3, "ok": true, "tags": []}',  # score an int, note null
                '{"score": 2.5, "note": "fine", "count": 4, "ok": false, "tags": ["a", "b"]}',
                '{"score": 3, "count": "many"}',  # a count that is not an integer
                '["not", "an", "object"]',
                "not json",
            ]
        }
    )
    parsed = outputs.map(
        parse_json_batch,
        batched=True,
        batch_size=1,  # every output in a batch of its own: types inferred per batch would differ
        features=parsed_features(outputs.features, step.json_fields),
        fn_kwargs={"column": "out", "fields": step.json_fields},
    )
    types = {name: parsed.features[name] for name in SCHEMA["properties"]}
    assert types == {
        "score": Value("float64"),
        "note": Value("string"),
        "count": Value("int64"),
        "ok": Value("bool"),
        "tags": Value("string"),  # an array is kept as JSON text
    }
    assert parsed["_parsed"] == [True, True, False, False, False]
    assert parsed["score"] == [1.0, 2.5, None, None, None]
    assert parsed["note"] == [None, "fine", None, None, None]
    assert parsed["count"] == [3, 4, None, None, None]
    assert parsed["ok"] == [True, False, None, None, None]
    assert parsed["tags"] == ["[]", '["a", "b"]', None, None, None]


CHOICE = {"choice": ["Positive", "Negative", "no", "not sure"]}


@pytest.mark.parametrize(
    "text, fit",
    [
        ("Positive", "Positive"),
        ("  **negative**.\n", "Negative"),  # case, markdown and a closing stop aside
        ('"Positive"', "Positive"),
        ("Negative. The review complains about the service.", "Negative"),  # begins with it, as a whole word
        ("Not sure, it could be either.", "not sure"),  # the longer choice, not "no"
        ("No.", "no"),
        ("Nothing to say", None),  # "no" only as the start of a word
        ("The review is positive.", None),
        ("", None),
    ],
)
def test_a_free_text_answer_fits_the_choice_it_names(text, fit):
    assert fit_answer(text, CHOICE) == fit


@pytest.mark.parametrize(
    "text, fit",
    [
        ('{"topic": "rivers", "score": 7}', '{"topic": "rivers", "score": 7}'),
        ('Here it is:\n```json\n{"topic": "rivers"}\n```\nAnything else?', '{"topic": "rivers"}'),
        ('The label is {"topic": "rivers", "tags": {"a": 1}} as asked.', '{"topic": "rivers", "tags": {"a": 1}}'),
        ("```json\n[1, 2]\n```", None),  # JSON, but not an object
        ("The topic is rivers.", None),
        ("{not json}", None),
    ],
)
def test_a_free_text_answer_fits_the_json_object_it_holds(text, fit):
    assert fit_answer(text, {"json": {"type": "object"}}) == fit


def test_a_free_text_answer_fits_a_regex_as_a_whole_and_the_misfits_are_marked_with_their_reason():
    regex = {"regex": r"[A-Z]{3}-[0-9]{2}"}
    assert fit_answer(" ABC-12\n", regex) == "ABC-12"
    assert fit_answer("Code: ABC-12", regex) is None
    batch = fit_batch({"out": ["ABC-12\n", "abc"], "x": [1, 2]}, "out", regex)
    assert batch == {"out": ["ABC-12", "abc"], "_unfit": [None, "no_regex_match"]}
    assert fit_batch({"out": ["Maybe"]}, "out", CHOICE)["_unfit"] == ["not_a_choice"]
    assert fit_batch({"out": ["no"]}, "out", {"json": {}})["_unfit"] == ["unparseable_json"]


def test_a_regex_python_cannot_read_is_a_user_error_naming_the_step():
    check_regex({"regex": r"[a-z]+"}, "steps[0].structured_output")
    check_regex({"choice": ["a", "b"]}, "steps[0].structured_output")
    with pytest.raises(UserError, match=r"^steps\[1\]\.structured_output: .* cannot read the regex \(unterminated"):
        check_regex({"regex": r"[a-z"}, "steps[1].structured_output")
