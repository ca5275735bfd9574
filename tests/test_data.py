import pandas as pd
import pytest

from builders.data import ROW_ID, load_rows
from builders.errors import UserError
from conftest import write_jsonl


def test_loads_jsonl_parquet_csv_and_folders(tmp_path):
    rows = [{"text": f"row {i}", "topic": "t"} for i in range(5)]
    write_jsonl(tmp_path / "a.jsonl", rows)
    pd.DataFrame(rows).to_parquet(tmp_path / "a.parquet")
    pd.DataFrame(rows).to_csv(tmp_path / "a.csv", index=False)
    folder = tmp_path / "folder"
    folder.mkdir()
    write_jsonl(folder / "part-0.jsonl", rows[:2])
    write_jsonl(folder / "part-1.jsonl", rows[2:])
    for source in ("a.jsonl", "a.parquet", "a.csv", "folder"):
        ds = load_rows(str(tmp_path / source), required_columns=["text"])
        assert sorted(ds["text"]) == [r["text"] for r in rows]
        assert ds[ROW_ID] == list(range(5))


def test_num_samples_keeps_the_first_rows(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"text": str(i)} for i in range(10)])
    assert load_rows(str(tmp_path / "a.jsonl"), num_samples=3)["text"] == ["0", "1", "2"]


def test_missing_column_lists_the_columns_that_exist(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"body": "x", "title": "y"}])
    with pytest.raises(UserError) as err:
        load_rows(str(tmp_path / "a.jsonl"), required_columns=["text"], key_hint="seed_column")
    assert "has no column 'text'" in str(err.value)
    assert "its columns are body, title" in str(err.value)
    assert "seed_column" in str(err.value)


def test_empty_dataset_is_an_error(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(UserError, match="has no rows|could not be read"):
        load_rows(str(tmp_path / "empty.jsonl"))
    write_jsonl(tmp_path / "a.jsonl", [{"text": "x"}])
    pd.DataFrame({"text": []}).astype(str).to_parquet(tmp_path / "e.parquet")
    with pytest.raises(UserError, match="has no rows"):
        load_rows(str(tmp_path / "e.parquet"))


def test_missing_path_and_unreachable_hub_id_say_how_to_fix(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_rows(str(tmp_path / "nope.jsonl"))
    with pytest.raises(UserError, match="HF_HUB_OFFLINE"):  # conftest sets HF_HUB_OFFLINE=1
        load_rows("some-org/some-dataset-that-is-not-cached")


def test_input_digests_follow_the_content_not_the_path_or_the_time(tmp_path):
    import os
    import shutil

    from builders.data import input_digests

    data, template = tmp_path / "a.jsonl", tmp_path / "t.jsonl.jinja"
    write_jsonl(data, [{"text": "alpha"}, {"text": "beta"}])
    template.write_text("{{ text }}")
    values = {"dataset": str(data), "steps": [{"template": str(template)}], "model": str(data), "seed": 1}
    first = input_digests(values)
    assert set(first) == {"dataset", "steps[0].template"}  # the model is named by its path, not hashed

    os.utime(data, (0, 0))
    assert input_digests(values) == first  # the time is not the content
    shutil.copy(data, tmp_path / "b.jsonl")
    assert input_digests({**values, "dataset": str(tmp_path / "b.jsonl")}) == first  # nor is the path
    write_jsonl(data, [{"text": "alpha"}, {"text": "gamma"}])  # same size, other bytes
    assert input_digests(values)["dataset"] != first["dataset"]

    folder = tmp_path / "folder"
    folder.mkdir()
    write_jsonl(folder / "part-0.jsonl", [{"text": "x"}])
    before = input_digests({"dataset": str(folder)})["dataset"]
    (folder / ".cache").mkdir()  # hidden entries are not input
    (folder / ".cache" / "x").write_text("x")
    assert input_digests({"dataset": str(folder)})["dataset"] == before
    (folder / "part-0.jsonl").rename(folder / "part-1.jsonl")
    assert input_digests({"dataset": str(folder)})["dataset"] != before
    assert input_digests({"dataset": ".", "split": "train"}) == {}  # the working folder is no input
