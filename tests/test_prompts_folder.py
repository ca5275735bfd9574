"""A user's own prompt templates (`prompts_folder`) replace ours in a recipe run, with our variables filling them."""

import pyarrow.parquet as pq
import pytest

from conftest import REPO, recipe_error, run_recipe

pytestmark = pytest.mark.vllm
SMOKE = str(REPO / "configs" / "cosmopedia" / "smoke.yaml")
# A paper-style template of the user's: Cosmopedia's placeholders filled by our variables (docs/reproduce.md).
USER_TEMPLATE = (
    "Here is an extract from a webpage: {{ extract }}\n\nWrite an academic unit for {{ audience }}. OURS-OVERRIDDEN"
)


def user_folder(tmp_path, name="cosmopedia/textbook_academic.jinja", text=USER_TEMPLATE):
    folder = tmp_path / "prompts"
    (folder / name).parent.mkdir(parents=True)
    (folder / name).write_text(text)
    return folder


def test_a_user_template_replaces_ours(tmp_path):
    out = tmp_path / "out"
    run_recipe(
        "cosmopedia",
        *("--config", SMOKE, "--output_dir", out, "--num_samples", 3, "--prompts_per_seed", 2),
        *("--formats", "textbook_academic,blogpost", "--prompts_folder", user_folder(tmp_path)),
    )
    rows = pq.read_table(out / "data").to_pylist()
    assert rows
    for row in rows:  # the academic prompts are the user's, the blog posts still ours
        overridden = row["prompt"].endswith("OURS-OVERRIDDEN")
        assert overridden == (row["format"] == "textbook_academic")
        if overridden:
            assert row["prompt"].startswith(f"Here is an extract from a webpage: {row['seed_data'].strip()}")
            assert f"for {row['audience']}." in row["prompt"]
    assert {r["format"] for r in rows} == {"textbook_academic", "blogpost"}


def test_a_misnamed_or_broken_template_is_one_line(tmp_path, capsys):
    out = tmp_path / "out"
    args = ("--config", SMOKE, "--output_dir", out, "--num_samples", 2, "--formats", "textbook_academic")
    folder = user_folder(tmp_path / "a", name="cosmopedia/textbook.jinja")
    err = recipe_error(capsys, "cosmopedia", *args, "--prompts_folder", folder)
    assert "holds cosmopedia/textbook.jinja, which replaces none of our templates" in err
    assert "cosmopedia/textbook_academic.jinja" in err
    folder = user_folder(tmp_path / "b", text="{{ extract }} for {{ reader }}")
    err = recipe_error(capsys, "cosmopedia", *args, "--prompts_folder", folder)
    assert "uses an unknown variable ('reader' is undefined); it is given audience, extract, topic" in err
    assert not (out / "data").exists()
