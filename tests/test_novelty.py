"""RougeLNovelty against rouge_score itself, on the real Alpaca instructions and the Self-Instruct seeds."""

import json
import random
from functools import cache

import numpy as np
import pytest
from rouge_score import rouge_scorer

from builders.methods.self_instruct.novelty import RougeLNovelty, rouge_tokens
from conftest import shipped_data

SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


@cache
def seeds() -> list[str]:
    return [json.loads(line)["instruction"] for line in shipped_data("seed_tasks.jsonl").read_text().splitlines()]


@cache
def alpaca() -> list[dict]:
    return json.loads(shipped_data("alpaca_5000.json").read_text())


def rouge(candidate: str, pool_entry: str) -> float:
    return SCORER.score(candidate, pool_entry)["rougeL"].fmeasure


def alpaca_loop(candidates: list[str], threshold: float) -> list[tuple]:
    """Stanford Alpaca's accept loop (generate_instruction.py), with rouge_score, one process."""
    pool = list(seeds())
    pool_tokens = [SCORER._tokenizer.tokenize(t) for t in pool]
    out = []
    for candidate in candidates:
        tokens = SCORER._tokenizer.tokenize(candidate)
        scores = [rouge_scorer._score_lcs(tokens, t).fmeasure for t in pool_tokens]
        most_similar = {pool[i]: scores[i] for i in np.argsort(scores)[-10:][::-1]}
        accepted = not max(scores) > threshold
        out.append((accepted, list(most_similar.items()), float(np.mean(scores))))
        if accepted:
            pool.append(candidate)
            pool_tokens.append(tokens)
    return out


def test_tokens_are_rouge_scores_tokens():
    texts = [r["instruction"] for r in alpaca()[:500]] + ["Ünïcode—dashes, e-mail & C++ 3.14", "", "!!!"]
    assert [rouge_tokens(t) for t in texts] == [SCORER._tokenizer.tokenize(t) for t in texts]


def test_scores_equal_rouge_score_exactly_on_real_instructions_and_long_texts():
    records = alpaca()
    # Outputs of 65 to 200 tokens take the path for entries longer than one 64-bit word.
    long_outputs = [r["output"] for r in records if 64 < len(rouge_tokens(r["output"])) <= 200][:20]
    pool = seeds() + [r["instruction"] for r in records[:400]] + long_outputs[:15]
    candidates = [r["instruction"] for r in records[400:430]] + long_outputs[15:] + [seeds()[3], ""]
    novelty = RougeLNovelty()
    novelty.extend(pool)
    for candidate in candidates:
        expected = np.array([rouge(candidate, p) for p in pool], dtype=np.float64)
        assert np.array_equal(novelty.scores(candidate), expected), candidate[:60]


def test_scores_equal_rouge_score_on_repetitive_token_sequences():
    """Few distinct tokens, many repeats, lengths around the 64-token word boundary: the hard cases for LCS."""
    rng = random.Random(0)
    texts = [" ".join(rng.choice("abcd") for _ in range(rng.choice([1, 5, 63, 64, 65, 130]))) for _ in range(60)]
    novelty = RougeLNovelty()
    novelty.extend(texts[:40])
    for candidate in texts[40:]:
        expected = np.array([rouge(candidate, p) for p in texts[:40]], dtype=np.float64)
        assert np.array_equal(novelty.scores(candidate), expected)


@pytest.mark.parametrize("threshold", [0.7, 0.5])
def test_accept_loop_equals_alpaca_decisions_records_and_averages(threshold):
    candidates = [r["instruction"] for r in alpaca()[:150]]
    candidates.insert(20, "¿¡ !!")  # no ROUGE tokens: Alpaca sorts int zeros then
    novelty = RougeLNovelty(threshold=threshold, top_k=10)
    novelty.extend(seeds())
    ours = [novelty.add(c) for c in candidates]
    reference = alpaca_loop(candidates, threshold)
    assert ours == reference
    rejected = sum(not accepted for accepted, _, _ in ours)
    assert (rejected == 0) if threshold == 0.7 else (rejected > 3)  # the real data is novel at Alpaca's 0.7
    assert len(novelty) == len(seeds()) + len(candidates) - rejected


def test_threshold_is_inclusive_and_duplicates_are_rejected():
    pool = seeds()
    candidate = "Describe a situation in which the given stereotype can hurt you badly."
    best = float(max(rouge(candidate, p) for p in pool))
    assert 0 < best < 1
    at = RougeLNovelty(threshold=best)
    at.extend(pool)
    assert at.add(candidate)[0]  # a score equal to the threshold is kept (Alpaca drops only "> 0.7")
    below = RougeLNovelty(threshold=float(np.nextafter(best, 0)))
    below.extend(pool)
    assert not below.add(candidate)[0]
    assert not at.add(candidate)[0]  # now in the pool: the same instruction again scores 1.0


def test_most_similar_lists_the_closest_pool_instructions():
    novelty = RougeLNovelty(top_k=3)
    novelty.extend(["Name three colors.", "Name three colors.", "Name three animals.", "Cook a pasta dish."])
    accepted, similar, avg = novelty.add("Please name three of your favorite colors.")
    assert accepted
    # the duplicate pool text appears once (Alpaca builds a dict keyed by instruction)
    assert [text for text, _ in similar] == ["Name three colors.", "Name three animals."]
    assert similar[0][1] == rouge("Please name three of your favorite colors.", "Name three colors.")
    assert avg == pytest.approx(
        np.mean([rouge("Please name three of your favorite colors.", p) for p in novelty.instructions[:4]])
    )


def test_empty_pool_and_token_free_texts():
    novelty = RougeLNovelty()
    assert novelty.add("First instruction ever written.") == (True, [], 0.0)
    accepted, similar, avg = novelty.add("¿¡ !!")  # no ROUGE tokens: every score is 0, as in rouge_score
    assert accepted and avg == 0.0 and similar == [("First instruction ever written.", 0.0)]
    assert novelty.scores("unseen words only").tolist() == [0.0, 0.0]
