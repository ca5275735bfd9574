"""Each quality check drops what it should, with its reason, and keeps real prose."""

import dataclasses
import json

import pytest
from datasets import Dataset

from builders.config import RecipeConfig
from builders.errors import UserError
from builders.filters.checks import apply_checks
from builders.filters.quality import (
    is_refusal,
    longest_phrase_loop,
    quality_checks,
    repeated_line_share,
    repeated_ngram_share,
)
from conftest import shipped_data


@pytest.fixture(scope="module")
def prose() -> list[str]:
    """Real text: Shakespeare passages (speakers' names and all) and Alpaca answers of one long paragraph."""
    text = shipped_data("tinyshakespeare.txt").read_text()
    passages = [text[i : i + 1500] for i in range(0, 300_000, 1500)]
    rows = json.loads(shipped_data("alpaca_5000.json").read_text())
    answers = [r["output"] for r in rows if len(r["output"].split()) >= 120 and "\n" not in r["output"]]
    return passages + answers


def config(**overrides) -> RecipeConfig:
    return dataclasses.replace(RecipeConfig(), **overrides)


def reasons(rows: list[dict], **overrides) -> list[str | None]:
    checks = quality_checks(config(**overrides), "text", prompt_column="prompt")
    _, rejected, _ = apply_checks(Dataset.from_list(rows), checks, desc="quality")
    by_text = dict(zip(rejected["text"], rejected["_drop_reason"]))
    return [by_text.get(r["text"]) for r in rows]


def test_real_prose_passes_the_defaults(prose):
    rows = [{"text": t, "prompt": "Write a passage."} for t in prose]
    dropped = [r for r in reasons(rows) if r]
    assert len(prose) > 250 and len(dropped) / len(prose) < 0.03, dropped


def test_each_check_drops_what_it_should_with_its_reason(prose):
    prose = [p for p in prose if "\n" not in p]  # Alpaca paragraphs
    base = prose[0]
    french = (
        "La Révolution française est une période de bouleversements politiques et sociaux en France. Elle met fin "
        "à l'Ancien Régime en remplaçant la monarchie absolue par une monarchie constitutionnelle, puis par la "
        "Première République. Les idées des Lumières ont joué un rôle important dans ce changement."
    )
    prompt = "Write a short textbook section for college students about the following extract. " + prose[1]
    bad = {
        "repeated_lines": "\n".join([prose[2][:80]] * 4 + [prose[3][:80], prose[4][:80]]),
        "looped_phrase": prose[6][:400] + " The end of the story." * 6,
        "repeated_ngrams": " ".join(prose[5].split()[:40]) + " " + " ".join(prose[5].split()[:40]),
        "html_tags": "<div class='x'><p>" + base[:300] + "</p><br/><span>more</span></div>",
        "non_letters": "}}{{ ## 1234 %% $$ 5678 @@ " * 20 + base[:100],
        "replacement_chars": base[:300] + " \ufffd",
        "echoes_prompt": "Sure. " + prompt,
        "refusal": "I'm sorry, but I can't help with that request. " + base[:200],
        "wrong_language": french,
        "too_short": "Too short to be a textbook.",
    }
    rows = [{"text": base, "prompt": "Write."}] + [{"text": t, "prompt": prompt} for t in bad.values()]
    got = reasons(rows, quality_language="en", quality_min_tokens=20, quality_max_tokens=5000)
    assert got == [None, *bad]

    rows.append({"text": base, "prompt": prompt})  # the same text with no limits on length is kept
    assert reasons(rows, quality_max_tokens=10)[-1] == "too_long"


def test_each_check_can_be_turned_off(prose):
    text = "\n".join([prose[-2][:80]] * 4) + " <p>a</p><br/><br/> \ufffd As an AI language model, I agree."
    rows = [{"text": text, "prompt": ""}]
    off = dict(
        quality_max_repeated_lines=None,
        quality_max_repeated_ngrams=None,
        quality_max_phrase_repeats=None,
        quality_max_html_tags=None,
        quality_max_replacement_chars=None,
        quality_drop_refusals=False,
    )
    assert reasons(rows, **off) == [None]
    assert reasons(rows, **{**off, "quality_drop_refusals": True}) == ["refusal"]
    assert quality_checks(config(quality_filters=False), "text") == []


def test_measures(prose):
    assert repeated_line_share("a\nb\na\n```\n```") == pytest.approx(1 / 3)  # fences do not count
    assert repeated_ngram_share(prose[0]) < 0.05
    assert longest_phrase_loop("go " * 9) == 9
    assert longest_phrase_loop("No, no, no, no, no.") == 1  # an outcry, not a loop
    assert longest_phrase_loop("the end. " * 4 + "not quite the end") == 4
    assert longest_phrase_loop("| 0 | 0 | 0 | 0 | 0 | 0 |") == 0  # numbers are not words
    assert is_refusal("As an AI language model, I cannot browse the internet.")
    assert is_refusal("I\u2019m sorry, but I can\u2019t assist with that.")
    assert not is_refusal("The model said it was an AI researcher's dream.")


def test_bad_thresholds_are_user_errors():
    with pytest.raises(UserError, match="quality_max_repeated_lines"):
        quality_checks(config(quality_max_repeated_lines=1.5), "text")
    with pytest.raises(UserError, match="quality_max_phrase_repeats"):
        quality_checks(config(quality_max_phrase_repeats=0), "text")
