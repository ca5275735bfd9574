"""Decontamination removes rows that copy a benchmark sample, and nothing else."""

import json

import pytest
from datasets import Dataset

from builders.errors import UserError
from builders.filters.decontaminate import decontaminate, load_benchmarks
from conftest import shipped_data, write_jsonl


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return json.loads(shipped_data("alpaca_5000.json").read_text())


@pytest.fixture
def benchmark(tmp_path, records):
    """A small local 'test set': 60 real Alpaca questions (instruction + input) with their answers."""
    rows = [
        {"question": f"{r['instruction']} {r['input']}".strip(), "answer": r["output"]}
        for r in records[:400]
        if len(f"{r['instruction']} {r['input']}".split()) >= 20
    ][:60]
    return write_jsonl(tmp_path / "quiz.jsonl", rows), rows


def test_a_planted_overlap_is_removed_and_nothing_else(benchmark, records):
    path, test_set = benchmark
    questions = sorted((r["question"] for r in test_set), key=len)
    rows = [r["output"] for r in records[1000:1400]]  # real text that does not come from the test set
    q1, longest, q3 = questions[1].split(), questions[-1].split(), questions[3].split()
    assert len(longest) >= 40
    edited = [w + "s" if i in (2, len(q1) - 3) else w for i, w in enumerate(q1)]
    planted = {
        5: "Here is a practice problem. " + questions[0] + " Try it before reading on.",  # verbatim
        77: "Question: " + " ".join(edited),  # two words edited
        150: " ".join(longest[:12]) + " " + rows[150],  # one 12-gram of a long question, then other text: kept
        222: rows[222] + " " + " ".join(reversed(q3)),  # the same words in another order: kept
    }
    for i, text in planted.items():
        rows[i] = text
    ds = Dataset.from_dict({"text": rows, "i": list(range(len(rows)))})

    benchmarks = load_benchmarks([{"path": str(path), "columns": ["question"]}])
    kept, removed, counts = decontaminate(ds, "text", benchmarks, ngram=12, threshold=0.5)
    assert removed["i"] == [5, 77]
    assert removed["benchmark"] == ["quiz", "quiz"] and counts == {"quiz": 2}
    assert kept["i"] == [i for i in range(len(rows)) if i not in (5, 77)]


def test_removals_are_counted_per_benchmark_and_short_samples_match_whole(tmp_path, benchmark, records):
    path, test_set = benchmark
    short = write_jsonl(
        tmp_path / "short.jsonl", [{"q": "name the three primary colours of light please"}, {"q": "B"}]
    )
    rows = [r["output"] for r in records[2000:2100]]
    rows[3] = "As asked: Name the three primary colours of light, please! Red, green and blue."
    rows[4] = test_set[5]["question"]
    rows[5] = test_set[6]["answer"] + " " + test_set[6]["question"]
    rows[6] = "Primary colours of light are red, green and blue."  # shorter than the sample: not a copy of it
    specs = [{"path": str(path), "columns": "question"}, {"path": str(short), "columns": ["q"], "split": "train"}]
    kept, removed, counts = decontaminate(Dataset.from_dict({"text": rows}), "text", load_benchmarks(specs))
    assert counts == {"quiz": 2, "short": 1}
    assert removed["text"] == [rows[3], rows[4], rows[5]]
    assert len(kept) == len(rows) - 3


def test_chinese_samples_match_by_characters(tmp_path):
    question = (
        "长城是中国古代的军事防御工程，修筑的历史可上溯到西周时期。春秋战国时期列国争霸，长城修筑进入第一个高潮。"
    )
    path = write_jsonl(tmp_path / "zh.jsonl", [{"question": question}])
    rows = [
        "问题：" + question.replace("第一个", "首个") + "请解释原因。",  # copied, one phrase edited
        "长城是中国古代的军事防御工程。黄河是中国第二长河，全长约五千四百六十四公里，是中华民族的母亲河。",  # one phrase
    ]
    kept, removed, counts = decontaminate(
        Dataset.from_dict({"text": rows}), "text", load_benchmarks([{"path": str(path), "columns": "question"}])
    )
    assert removed["text"] == rows[:1] and kept["text"] == rows[1:] and counts == {"zh": 1}


def test_benchmarks_with_the_same_file_name_are_counted_apart(tmp_path, benchmark):
    path, test_set = benchmark
    (tmp_path / "other").mkdir()
    other = write_jsonl(tmp_path / "other" / "quiz.jsonl", [{"question": test_set[0]["question"] + " (reworded)"}])
    specs = [{"path": str(path), "columns": "question"}, {"path": str(other), "columns": "question"}]
    rows = [test_set[1]["question"], "Unrelated text."]
    _, _, counts = decontaminate(Dataset.from_dict({"text": rows}), "text", load_benchmarks(specs))
    assert counts == {"quiz": 1, str(other): 0}


def test_bad_benchmark_entries_are_user_errors(benchmark):
    path, _ = benchmark
    with pytest.raises(UserError, match="needs `path` and `columns`"):
        load_benchmarks([{"path": str(path)}])
    with pytest.raises(UserError, match="unknown key"):
        load_benchmarks([{"path": str(path), "columns": ["question"], "colums": ["x"]}])
    with pytest.raises(UserError, match="has no column 'prompt'"):
        load_benchmarks([{"path": str(path), "columns": ["prompt"]}])
    with pytest.raises(UserError, match="give a mapping"):
        load_benchmarks([str(path)])
