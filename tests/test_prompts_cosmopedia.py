import pytest
from datasets import Dataset

from builders.errors import UserError
from builders.methods.cosmopedia import AUDIENCES, FORMATS, build_prompt, choose_styles, style_pairs, truncate_extracts
from conftest import load_recipe

EXTRACT = "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen inside chloroplasts."


@pytest.mark.parametrize("fmt, audience", [(f, a) for f, audiences in FORMATS.items() for a in audiences])
def test_every_format_and_audience_renders(fmt, audience):
    prompt = build_prompt(EXTRACT, fmt, audience, topic="plant biology")
    assert EXTRACT in prompt
    assert "plant biology" in prompt
    assert "{" not in prompt and "}" not in prompt  # no unrendered Jinja


def test_audience_changes_the_instructions():
    child = build_prompt(EXTRACT, "textbook_narrative", "young_children")
    college = build_prompt(EXTRACT, "textbook_narrative", "college_students")
    researcher = build_prompt(EXTRACT, "textbook_academic", "researchers")
    assert "LaTeX" in child and "Do not use technical terms" in child
    assert "LaTeX" in researcher and "expert knowledge" in researcher
    assert child != college
    assert "rigorous" in college


def test_no_topic_renders_without_context_clause():
    prompt = build_prompt(EXTRACT, "blogpost", "general", topic=None)
    assert "wider theme" not in prompt


def test_style_choice_is_deterministic_and_varies_across_rows():
    pairs = style_pairs(list(FORMATS), list(AUDIENCES))
    first = [choose_styles(pairs, 42, row, 2) for row in range(50)]
    again = [choose_styles(pairs, 42, row, 2) for row in range(50)]
    assert first == again
    assert len({tuple(x) for x in first}) > 20  # rows get different styles
    assert all(len(set(x)) == 2 for x in first)  # distinct pairs within a row
    assert [choose_styles(pairs, 7, row, 2) for row in range(50)] != first  # the seed matters


def test_unknown_format_or_impossible_combination_is_a_user_error():
    with pytest.raises(UserError, match="unknown format 'poem'"):
        style_pairs(["poem"], list(AUDIENCES))
    with pytest.raises(UserError, match="unknown audience"):
        style_pairs(["blogpost"], ["toddlers"])
    with pytest.raises(UserError, match="no format in `formats` allows an audience"):
        style_pairs(["story_children"], ["researchers"])


def test_extracts_are_truncated_to_the_token_budget(tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    long_text = " ".join(["the quick brown fox jumps over the lazy dog"] * 50)
    short, cut = truncate_extracts(["a short one", long_text], tokenizer, max_tokens=40)
    assert short == "a short one"
    assert len(tokenizer(cut, add_special_tokens=False)["input_ids"]) <= 41
    assert long_text.startswith(cut.strip()[:30])
    assert truncate_extracts([long_text], None, 5) == ["the quick brown fox jumps"]


def test_prompt_building_is_identical_across_runs_and_num_proc(tiny_model):
    from transformers import AutoTokenizer

    from builders.data import ROW_ID

    recipe = load_recipe("cosmopedia")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    texts = [f"Extract number {i} about topic {i % 7}." for i in range(40)]
    ds = Dataset.from_dict({"text": texts, ROW_ID: list(range(40))})
    kwargs = dict(
        pairs=style_pairs(list(FORMATS), list(AUDIENCES)),
        seed=3,
        per_seed=2,
        seed_column="text",
        topic_column="topic",
        tokenizer=tokenizer,
        max_seed_tokens=100,
    )
    one = ds.map(recipe.build_prompts, batched=True, batch_size=7, remove_columns=ds.column_names, fn_kwargs=kwargs)
    two = ds.map(
        recipe.build_prompts,
        batched=True,
        batch_size=5,
        num_proc=2,
        remove_columns=ds.column_names,
        fn_kwargs=kwargs,
        load_from_cache_file=False,
    )
    assert one.to_list() == two.to_list()
    assert len(one) == 80
    assert sorted(one[ROW_ID]) == list(range(80))  # each prompt has its own row id (its own sampling seed)
