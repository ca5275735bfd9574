"""Final-answer checks: our `math_answers` vs Hugging Face's math-verify, and the recipe's check that adopts it.

    python benchmarks/math_answers.py                         # runs the reasoning demo (SmolLM2) for real answers
    python benchmarks/math_answers.py --answers outputs/reasoning-bench   # an earlier run's output folder

Two sets of (answer, reference) pairs, each judged three ways:
- ours: `answers_match(extract_final_answer(answer), parse_reference(reference))`, the check before math-verify;
- math-verify: `verify(parse(reference), parse(answer))` as open-r1 calls it (a bare LaTeX reference such as
  `\\sqrt{12}` wrapped in `$...$`, or math-verify reads nothing);
- recipe: `builders.methods.reasoning.answer_check.answer_is_right`, math-verify with ours where it misses.
The sets: the cases of tests/test_reasoning.py (answers written for the tests, each with its expected verdict),
and real answers: the reasoning recipe's demo config (SmolLM2-135M-Instruct through vLLM, the 30 questions of
configs/reasoning/questions.jsonl with their references), its language and loop filters off and `keep_rejected`
on, so every answer the model wrote reaches the table. Prints a Markdown table of every case, the cases where
the three disagree, and the time per check of ours and math-verify's (and the ratio).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_cases() -> list[tuple[str, str, bool | None, str]]:
    """(answer, reference, expected verdict, source) from tests/test_reasoning.py."""
    sys.path.insert(0, str(REPO / "tests"))
    from test_reasoning import ALL_CASES

    return [(answer, reference, expected, "test") for answer, reference, expected in ALL_CASES]


def real_answers(folder: Path) -> list[tuple[str, str, bool | None, str]]:
    """(answer, reference, None, "SmolLM2") for every row of a reasoning output folder, kept or rejected."""
    import pyarrow.parquet as pq

    rows = pq.read_table(folder / "data").to_pylist()
    if (folder / "rejected").exists():
        rows += [json.loads(r["row"]) for r in pq.read_table(folder / "rejected").to_pylist()]
    return [
        (r["answer"], r["reference_answer"], None, "SmolLM2")
        for r in rows
        if (r.get("answer") or "").strip() and r.get("reference_answer")
    ]


def run_demo(folder: Path) -> None:
    overrides = ["--check_language", "false", "--max_repeated_ngrams", "null", "--drop_truncated", "false"]
    overrides += ["--keep_rejected", "true", "--output_dir", str(folder), "--overwrite", "true"]
    cmd = [sys.executable, str(REPO / "recipes" / "reasoning.py"), "--config", "configs/reasoning/demo.yaml"]
    subprocess.run(cmd + overrides, check=True, cwd=REPO)


def judge(cases):
    from math_verify import parse, verify

    from builders.methods.reasoning.answer_check import answer_is_right
    from builders.methods.reasoning.math_answers import answers_match, extract_final_answer, parse_reference

    def ours(answer, reference):
        parsed = parse_reference(reference)
        return None if parsed is None else answers_match(extract_final_answer(answer), parsed)

    def math_verify(answer, reference):
        return bool(verify(parse(reference) or parse(f"${reference}$"), parse(answer)))

    seconds = {"ours": 0.0, "math-verify": 0.0}
    verdicts = []
    for answer, reference, expected, source in cases:
        row = {"answer": answer, "reference": reference, "expected": expected, "source": source}
        for name, check in (("ours", ours), ("math-verify", math_verify)):
            start = time.perf_counter()
            row[name] = check(answer, reference)
            seconds[name] += time.perf_counter() - start
        row["recipe"] = answer_is_right(answer, reference)
        verdicts.append(row)
    return verdicts, seconds


def show(verdict) -> str:
    return {True: "right", False: "wrong", None: "not checked"}[verdict]


def cell(text: str, limit: int = 90) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=Path, help="a reasoning output folder (keep_rejected: true) to read")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="math-answers-") as tmp:
        folder = args.answers
        if folder is None:
            folder = Path(tmp) / "reasoning"
            run_demo(folder)
        cases = test_cases() + real_answers(folder)
    judge(cases[:1])  # imports sympy and math-verify's parser once, outside the timing
    verdicts, seconds = judge(cases)

    print("| # | source | answer | reference | expected | ours | math-verify | recipe |")
    print("|---:|---|---|---|---|---|---|---|")
    for i, v in enumerate(verdicts, 1):
        expected = "" if v["expected"] is None else show(v["expected"])
        print(
            f"| {i} | {v['source']} | {cell(v['answer'])} | {cell(v['reference'], 30)} | {expected} "
            f"| {show(v['ours'])} | {show(v['math-verify'])} | {show(v['recipe'])} |"
        )
    print()
    checked = [v for v in verdicts if v["ours"] is not None]
    for source in ("test", "SmolLM2"):
        rows = [v for v in checked if v["source"] == source]
        agree = sum(v["ours"] == v["math-verify"] for v in rows)
        line = f"{source}: {len(rows)} checked answers, ours and math-verify agree on {agree}"
        if source == "test":
            line += "; right verdicts: " + ", ".join(
                f"{name} {sum(v[name] == v['expected'] for v in rows)}" for name in ("ours", "math-verify", "recipe")
            )
        print(line)
    skipped = len(verdicts) - len(checked)
    print(f"not checked (the reference is not a math answer): {skipped}")
    per = {name: 1000 * s / len(verdicts) for name, s in seconds.items()}
    print(
        f"time per check: ours {per['ours']:.2f} ms, math-verify {per['math-verify']:.2f} ms "
        f"(math-verify / ours: {per['math-verify'] / per['ours']:.1f}x)"
    )


if __name__ == "__main__":
    main()
