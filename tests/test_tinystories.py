"""TinyStories' building blocks: the vocabulary, word and feature draws, story checks, the Instruct layout."""

from collections import Counter

import pytest

from builders.errors import UserError
from builders.methods.tinystories.prompts import (
    FEATURES,
    choose_sentence,
    clean_story,
    clean_summary,
    draw_features,
    draw_words,
    instruct_text,
    sentences,
    story_prompt,
)
from builders.methods.tinystories.vocabulary import hard_words, load_vocabulary, story_checks, uses_word

VOCAB = load_vocabulary()


def test_the_project_vocabulary_has_about_1500_simple_words_split_by_part_of_speech():
    assert 1400 <= len(VOCAB) <= 1700
    assert len(VOCAB.nouns) > len(VOCAB.verbs) > 300 and len(VOCAB.adjectives) > 250
    assert {"dog", "ball", "mom"} <= set(VOCAB.nouns) and {"run", "jump", "hug"} <= set(VOCAB.verbs)
    assert {"big", "happy", "red"} <= set(VOCAB.adjectives)
    assert not {"photosynthesis", "magnificent", "consequently"} & VOCAB.simple


def test_word_draws_are_deterministic_per_seed_and_row_and_vary_across_rows():
    draws = [draw_words(VOCAB, 42, row) for row in range(300)]
    assert draws == [draw_words(VOCAB, 42, row) for row in range(300)]
    assert draws != [draw_words(VOCAB, 7, row) for row in range(300)]
    assert all(n in VOCAB.nouns and v in VOCAB.verbs and a in VOCAB.adjectives for n, v, a in draws)
    assert len({tuple(d) for d in draws}) == 300 and len({d[0] for d in draws}) > 200


def test_feature_draws_are_deterministic_subsets_within_bounds():
    names = list(FEATURES)
    draws = [draw_features(names, 42, row, 1, 3) for row in range(600)]
    assert draws == [draw_features(names, 42, row, 1, 3) for row in range(600)]
    assert draws != [draw_features(names, 43, row, 1, 3) for row in range(600)]
    assert all(1 <= len(d) <= 3 and len(set(d)) == len(d) for d in draws)
    assert all(d == [f for f in names if f in d] for d in draws)  # canonical order
    sizes = Counter(len(d) for d in draws)
    assert set(sizes) == {1, 2, 3} and min(sizes.values()) > 120  # about a third each
    counts = Counter(f for d in draws for f in d)
    assert set(counts) == set(names) and min(counts.values()) > 120
    few = [draw_features(["conflict", "dialogue"], 42, row, 0, 5) for row in range(50)]
    assert {tuple(d) for d in few} == {(), ("dialogue",), ("conflict",), ("dialogue", "conflict")}


def test_story_prompt_names_the_words_and_the_features():
    prompt = story_prompt(["ball", "throw", "red"], ["dialogue", "bad_ending"])
    assert '"throw"' in prompt and '"ball"' in prompt and '"red"' in prompt
    assert FEATURES["dialogue"][1] in prompt and FEATURES["bad_ending"][1] in prompt
    assert FEATURES["conflict"][1] not in prompt
    assert "It must also have" not in story_prompt(["ball", "throw", "red"], [])


@pytest.mark.parametrize(
    "word,form",
    [
        ("hop", "hopped"),
        ("carry", "carried"),
        ("dance", "dancing"),
        ("leaf", "leaves"),
        ("box", "boxes"),
        ("child", "children"),
        ("run", "ran"),
        ("big", "bigger"),
        ("gentle", "gently"),
        ("happy", "happily"),
        ("tie", "tying"),
        ("swim", "swimmer"),
        ("dog", "Dog's"),
    ],
)
def test_a_required_word_counts_in_any_inflection(word, form):
    assert uses_word(f"Once there was a {form} here.", word, VOCAB)


def test_a_missing_word_is_missing_even_inside_a_longer_word():
    assert not uses_word("The cat sat on the mat.", "dog", VOCAB)
    assert not uses_word("A carpet was on the floor.", "car", VOCAB)


def test_hard_words_skip_names_and_contractions():
    story = "Lily's dog didn't want to play. \"Can't we go?\" asked Max. Lily saw a magnificent telescope."
    hard, counted = hard_words(story, VOCAB)
    assert hard == ["magnificent", "telescope"]
    assert counted == 13  # 16 words, of which Lily (twice) and Max are names


def check_reasons(rows, **kwargs):
    checks = story_checks(VOCAB, **kwargs)
    out = []
    for row in rows:
        row = {"finish_reason": "stop", **row}
        out.append(next((r for ok, r in (c(row) for c in checks) if not ok), None))
    return out


def test_story_checks_say_why_a_story_is_dropped():
    good = "Tom had a red ball. He liked to throw it to his dog. The dog ran and got the ball. They were happy."
    rows = [
        {"story": good, "words": ["ball", "throw", "red"]},
        {"story": good, "words": ["ball", "throw", "red"], "finish_reason": "length"},
        {"story": good, "words": ["kite", "throw", "red"]},
        {"story": "Tom had a red ball.", "words": ["ball", "have", "red"]},
        {"story": good + " The ball was iridescent and ostentatious.", "words": ["ball", "throw", "red"]},
        {"story": "  ", "words": ["ball", "throw", "red"]},
    ]
    reasons = check_reasons(rows, min_words=10, max_hard_share=0.05)
    assert reasons == [None, "truncated", "missing_word", "too_short", "too_many_hard_words", "empty"]
    relaxed = check_reasons(rows[:3], min_words=10, max_hard_share=0.05, require_words=False, drop_truncated=False)
    assert relaxed == [None, None, None]


def test_hard_word_share_at_the_limit_passes():
    row = {"story": "The dog saw a telescope.", "words": ["dog", "see", "big"]}  # 1 hard word in 5
    assert check_reasons([row], max_hard_share=0.2, require_words=False) == [None]
    assert check_reasons([row], max_hard_share=0.19, require_words=False) == ["too_many_hard_words"]


def test_instruct_layout_and_its_parts():
    story = 'Sue had a red kite. The wind took the kite up high!\n"Come back," said Sue. The kite came back.'
    sentence = choose_sentence(story, 42, 3)
    assert sentence in sentences(story) and sentence == choose_sentence(story, 42, 3)
    assert {choose_sentence(story, 42, r) for r in range(40)} == {s for s in sentences(story) if len(s.split()) >= 4}
    summary = clean_summary("Summary: Sue flies her kite.\nThe wind takes it. It comes back. The end.")
    assert summary == "Sue flies her kite. The wind takes it."
    text = instruct_text(["dialogue", "plot_twist"], ["kite", "fly", "red"], sentence, summary, story)
    assert text == (
        "Features: Dialogue, Twist\nWords: kite, fly, red\n"
        f"Random sentence: {sentence}\nSummary: {summary}\nStory:\n{story}"
    )
    assert instruct_text([], ["kite", "fly", "red"], "", summary, story).startswith("Words: kite, fly, red\nSummary:")


def test_a_title_the_model_added_is_removed():
    assert clean_story("Title: The Red Kite\n\nSue had a kite.") == "Sue had a kite."
    assert clean_story("**The Red Kite**\nSue had a kite.") == "Sue had a kite."
    assert clean_story("  Sue had a kite.\nIt was red.  ") == "Sue had a kite.\nIt was red."


def test_users_can_pass_their_own_word_lists(tmp_path):
    (tmp_path / "nouns.txt").write_text("# my nouns\nrobot\nMoon\nrobot\n")
    (tmp_path / "verbs.txt").write_text("beep\n")
    (tmp_path / "adjectives.txt").write_text("shiny\n")
    vocab = load_vocabulary(tmp_path / "nouns.txt", tmp_path / "verbs.txt", tmp_path / "adjectives.txt")
    assert vocab.nouns == ["robot", "moon"] and len(vocab) == 4
    assert {tuple(draw_words(vocab, 1, row)) for row in range(20)} == {
        ("robot", "beep", "shiny"),
        ("moon", "beep", "shiny"),
    }
    assert uses_word("The robots beeped.", "beep", vocab)
    with pytest.raises(UserError, match="does not exist"):
        load_vocabulary(tmp_path / "none.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(UserError, match="holds no words"):
        load_vocabulary(verbs_file=tmp_path / "empty.txt")
