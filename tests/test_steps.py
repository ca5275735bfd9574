"""Generation steps of the generic recipe (builders/steps.py): JSON fields as typed columns."""

from datasets import Dataset, Value

from builders.steps import parse_json_batch, parse_step, parsed_features

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
