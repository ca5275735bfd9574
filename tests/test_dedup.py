"""Exact and MinHash dedup on real text with planted duplicates whose true Jaccard is computed exactly."""

import json
import random
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from datasets import Dataset

from builders.dedup.minhash import exact_dedup, jaccard, lsh_params, minhash_dedup, normalize, optimal_param, shingles
from builders.dedup.shingles import reference_units, text_units
from conftest import REPO, shipped_data

ODD_TEXTS = [
    "  héllo, wörld!! 你好，世界 x_y 3.14 ",
    "",
    None,
    "a",
    "ＡＢＣ　全角　ｆｕｌｌ-width",
    "İstanbul ΣΑΣ Straße 😀 𠀀𠀁 word",
    "我爱北京天安门，天安门上太阳升。今天天气很好",
]


@pytest.fixture(scope="module")
def answers() -> list[str]:
    """Alpaca answers of 40 words or more, each once."""
    rows = json.loads(shipped_data("alpaca_5000.json").read_text())
    return list(dict.fromkeys(r["output"] for r in rows if len(r["output"].split()) >= 40))


@pytest.fixture(scope="module")
def shakespeare() -> list[str]:
    text = shipped_data("tinyshakespeare.txt").read_text()
    return [text[i : i + 800] for i in range(0, 400_000, 800)]


def edit(text: str, rate: float, rng: random.Random) -> str:
    words = text.split()
    for _ in range(max(1, round(rate * len(words)))):
        i = rng.randrange(len(words))
        words[i] = rng.choice(["lorem", "ipsum", "dolor", "amet", "quux"]) if rng.random() < 0.7 else ""
    return " ".join(w for w in words if w)


def test_vectorised_units_match_the_python_definition(answers, shakespeare):
    texts = answers[:500] + shakespeare[:200] + ODD_TEXTS
    for char_mode in (False, True):
        units = text_units(pa.array(texts, pa.large_string()), char_mode)
        seen: dict[str, int] = {}
        for i, text in enumerate(texts):
            expected = reference_units(text, char_mode)
            got = units.hashes[units.offsets[i] : units.offsets[i + 1]].tolist()
            assert len(got) == len(expected), (char_mode, text)
            for unit, h in zip(expected, got):
                assert seen.setdefault(unit, h) == h  # the same unit hashes the same everywhere
        assert len(set(seen.values())) == len(seen)  # and different units differently


def test_ngram_hashes_count_the_same_sets_as_the_python_definition(answers):
    texts = answers[:300]
    grams = text_units(texts).ngrams(5)
    for i, text in enumerate(texts):
        hashes = grams.hashes[grams.offsets[i] : grams.offsets[i + 1]]
        assert len(set(hashes.tolist())) == len(shingles(text, 5))
    # a gram shared by two documents has the same hash in both
    a, b = texts[0], "prefix words here " + texts[0]
    g = text_units([a, b]).ngrams(5)
    assert set(g.hashes[: g.offsets[1]].tolist()) < set(g.hashes[g.offsets[1] :].tolist())


def planted_corpus(answers, seed=0):
    """Real answers with planted copies (exact, re-cased, near copies at many edit rates) in shuffled order."""
    rng = random.Random(seed)
    rows = []
    for group, text in enumerate(answers[:600]):
        rows.append({"group": group, "text": text})
        if group % 3 == 0:
            rows.append({"group": group, "text": text})
        if group % 3 == 1:
            rows.append({"group": group, "text": text.upper().replace(",", " ;")})
        if group % 2 == 0:
            rows.append({"group": group, "text": edit(text, rng.uniform(0.0, 0.15), rng)})
    rng.shuffle(rows)
    return rows


def test_planted_duplicates_are_found_and_the_first_row_survives(answers):
    rows = planted_corpus(answers)
    ds = Dataset.from_list(rows)
    kept, stats, removed = minhash_dedup(ds, threshold=0.7, return_removed=True, cluster_column="cluster")

    by_group: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        by_group.setdefault(row["group"], []).append(i)
    pairs = [
        (i, j, jaccard(rows[i]["text"], rows[j]["text"]))
        for members in by_group.values()
        for x, i in enumerate(members)
        for j in members[x + 1 :]
    ]
    survivors = set(kept["cluster"])
    assert len(kept) + len(removed) == len(ds) and stats["removed"] == len(removed)
    # every removed row has a true duplicate, and points at a surviving row that comes before it
    twins = {i for i, j, s in pairs if s >= 0.7} | {j for i, j, s in pairs if s >= 0.7}
    assert set(removed["duplicate_of"]) <= survivors
    removed_idx = [i for i in range(len(rows)) if i not in survivors]
    assert removed_idx and set(removed_idx) <= twins
    assert all(first < i for first, i in zip(removed["duplicate_of"], removed_idx))
    # recall on pairs well above the threshold
    strong = [(i, j) for i, j, s in pairs if s >= 0.8]
    found = sum(1 for i, j in strong if not (i in survivors and j in survivors))
    assert len(strong) > 300 and found / len(strong) >= 0.95
    assert stats["clusters"] == len({c for c in removed["duplicate_of"]})
    assert stats["candidate_pairs"] >= stats["duplicate_pairs"] > 0


def test_near_copies_below_the_threshold_are_kept(answers):
    rng = random.Random(1)
    base = [a for a in answers if len(a.split()) >= 80][:40]
    copies = [edit(t, 0.12, rng) for t in base]
    similarity = [jaccard(a, b) for a, b in zip(base, copies)]
    ds = Dataset.from_dict({"text": base + copies})
    kept, stats = minhash_dedup(ds, threshold=0.7)
    kept_texts = set(kept["text"])
    for b, c, s in zip(base, copies, similarity):
        if s < 0.6:
            assert b in kept_texts and c in kept_texts
    assert sum(s < 0.6 for s in similarity) >= 20
    # without verification LSH decides alone, and every candidate pair counts
    _, loose = minhash_dedup(ds, threshold=0.7, verify=False)
    assert loose["duplicate_pairs"] == loose["candidate_pairs"]


def test_short_rows_are_skipped_never_deleted(answers):
    texts = ["ok", "ok", "thanks a lot", "", None, answers[0], answers[0]]
    kept, stats = minhash_dedup(Dataset.from_dict({"text": texts}), ngram=5)
    assert kept["text"] == texts[:6]
    assert stats == stats | {"removed": 1, "skipped_short": 5}


def test_chinese_text_dedups_by_characters():
    passage = (
        "长城是中国古代的军事防御工程，修筑的历史可上溯到西周时期。春秋战国时期列国争霸，互相防守，"
        "长城修筑进入第一个高潮。秦灭六国统一天下后，秦始皇连接和修缮战国长城，始有万里长城之称。"
        "明朝是最后一个大规模修筑长城的朝代，今天人们所看到的长城多是此时修筑。"
    )
    near = passage.replace("军事防御工程", "防御工程").replace("第一个", "首个")
    other = "黄河是中国第二长河，全长约五千四百六十四公里，流域面积约七十五万平方公里，是中华民族的母亲河。"
    assert jaccard(passage, near, tokenizer="char") >= 0.8
    ds = Dataset.from_dict({"text": [passage, other, near]})
    kept, stats = minhash_dedup(ds, threshold=0.7)  # tokenizer="auto": characters for these rows
    assert kept["text"] == [passage, other] and stats["skipped_short"] == 0
    kept, _ = minhash_dedup(ds, threshold=0.7, tokenizer="char")
    assert kept["text"] == [passage, other]


def test_exact_dedup_folds_case_spacing_and_punctuation(answers):
    texts = ["Hello, World!", "hello   world", "HELLO world.", "!!!", "???", answers[1], "Hello world again"]
    kept, stats, removed = exact_dedup(Dataset.from_dict({"text": texts}), return_removed=True)
    assert kept["text"] == ["Hello, World!", "!!!", "???", answers[1], "Hello world again"]
    assert removed["duplicate_of"] == [0, 0] and stats["removed"] == 2
    kept, stats = exact_dedup(Dataset.from_dict({"text": texts + [answers[1].upper()]}), min_length=3)
    assert kept["text"] == texts[:6] + ["Hello world again"]  # short rows are skipped, long ones deduped
    assert normalize("Hello,  WORLD!") == "hello world"


def test_dedup_honours_a_row_selection(shakespeare):
    ds = Dataset.from_dict({"text": shakespeare[:50], "i": list(range(50))})
    selected = ds.select([40, 3, 3, 7, 40, 12])  # an indices mapping, as after a filter
    kept, _ = minhash_dedup(selected)
    assert kept["i"] == [40, 3, 7, 12]
    kept, _ = exact_dedup(selected)
    assert kept["i"] == [40, 3, 7, 12]


def test_threads_give_the_same_result_as_one(shakespeare, answers):
    ds = Dataset.from_list(planted_corpus(answers, seed=3)[:900])
    one, s1 = minhash_dedup(ds, num_proc=1, batch_size=128)
    two, s2 = minhash_dedup(ds, num_proc=2, batch_size=128)
    assert one["text"] == two["text"] and s1 == s2


def test_the_spawn_start_method_vllm_needs_survives_dedup():
    code = (
        "import multiprocessing as mp, sys\n"
        "mp.set_start_method('spawn')\n"
        "from datasets import Dataset\n"
        "from builders.dedup.minhash import minhash_dedup, exact_dedup\n"
        "ds = Dataset.from_dict({'text': ['a b c d e f g'] * 3})\n"
        "exact_dedup(ds); minhash_dedup(ds, num_proc=2)\n"
        "print(mp.get_start_method(allow_none=True), 'text_dedup.minhash' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["spawn", "False"]


def test_bad_arguments_are_refused():
    ds = Dataset.from_dict({"text": ["a"]})
    with pytest.raises(ValueError, match="tokenizer"):
        minhash_dedup(ds, tokenizer="bpe")
    with pytest.raises(ValueError, match="threshold"):
        minhash_dedup(ds, threshold=1.5)
    with pytest.raises(KeyError, match="body"):
        minhash_dedup(ds, column="body")
    assert minhash_dedup(Dataset.from_dict({"text": []}))[1]["removed"] == 0
    assert np.array_equal(text_units([]).offsets, [0])


def test_band_and_row_choice_is_text_dedups():
    from text_dedup.utils import optimal_param as text_dedup_optimal_param

    for threshold, num_perm, weights in [(0.7, 128, (0.5, 0.5)), (0.7, 128, (0.1, 0.9)), (0.5, 64, (0.3, 0.7))]:
        assert optimal_param(threshold, num_perm, *weights) == text_dedup_optimal_param(threshold, num_perm, *weights)
    assert optimal_param(0.85, 256) == text_dedup_optimal_param(0.85, 256)
    assert lsh_params(0.7, 128) == (20, 6) and lsh_params(0.7, 128, verify=False) == (14, 9)
