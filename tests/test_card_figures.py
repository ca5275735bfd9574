"""The card's figures: diversity measures and the length histogram, on the real reference data."""

import io
import json

from matplotlib.image import imread

from builders.output.diversity import distinct_ngrams, diversity_figures, mean_pairwise_similarity
from builders.output.figures import length_histogram, text_lengths
from conftest import shipped_data


def alpaca_outputs(n: int) -> list[str]:
    rows = json.loads(shipped_data("alpaca_5000.json").read_text())
    return [r["output"] for r in rows if len(r["output"].split()) >= 30][:n]


def test_distinct_ngrams_counts_unique_over_all():
    assert distinct_ngrams(["a b c", "A b, d!"], 1) == 4 / 6
    assert distinct_ngrams(["a b c", "A b, d!"], 2) == 3 / 4
    assert distinct_ngrams(["one"], 2) == 0.0


def test_repeated_text_scores_as_repetitive_and_varied_text_as_varied():
    varied = alpaca_outputs(200)
    repeated = [varied[0]] * 200
    assert len(varied) == 200
    assert distinct_ngrams(varied, 2) > 0.7 > 0.01 > distinct_ngrams(repeated, 2)
    assert mean_pairwise_similarity(repeated) == 1.0
    assert mean_pairwise_similarity(varied) < 0.01
    # half the texts the same: the mean over pairs is about the share of identical pairs (100*99 / (200*199))
    half = varied[:100] + repeated[:100]
    assert abs(mean_pairwise_similarity(half) - 100 * 99 / (200 * 199)) < 0.02


def test_figures_are_the_same_on_a_rerun_and_skip_texts_too_short():
    texts = alpaca_outputs(300)
    first, again = diversity_figures(texts, seed=3), diversity_figures(texts, seed=3)
    assert first == again and set(first) == {
        "distinct-1",
        "distinct-2",
        "distinct-3",
        "mean pairwise MinHash similarity (5-grams, 300 texts)",
    }
    assert mean_pairwise_similarity(["too short", "also short"]) is None
    assert diversity_figures([], seed=3) == {}


def test_length_histogram_is_a_png_and_lengths_fall_back_to_words():
    png = length_histogram([10, 20, 20, 30, 400], "tokens", "text")
    image = imread(io.BytesIO(png), format="png")
    assert png.startswith(b"\x89PNG") and image.shape[:2] == (350, 700)
    assert text_lengths(["a b c", "", None]) == ([3, 0, 0], "words")
