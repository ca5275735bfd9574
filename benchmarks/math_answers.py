"""Final-answer checks: our `math_answers` vs Hugging Face's math-verify, and the recipe's check that adopts it.

    python benchmarks/math_answers.py                            # the tests' cases and the Alpaca answers
    python benchmarks/math_answers.py --run_demo                 # also SmolLM2's answers to the demo questions
    python benchmarks/math_answers.py --answers outputs/reasoning-bench   # ... from an earlier run's output folder

Each (answer, reference) pair is judged three ways:
- ours: `answers_match(extract_final_answer(answer), parse_reference(reference))`, the check before math-verify;
- math-verify: `verify(parse(reference), parse(answer))` as open-r1 calls it (a bare LaTeX reference such as
  `\\sqrt{12}` wrapped in `$...$` by `math_text`: unwrapped, math-verify reads nothing, and `16\\pi` as 16);
- recipe: `builders.methods.reasoning.answer_check.answer_is_right`, math-verify with ours where it misses.
The pairs:
- test: the cases of tests/test_reasoning.py, answers written for the tests, each with its expected verdict;
- Alpaca: real answers of text-davinci-003 to 28 arithmetic questions of data/alpaca_5000.json, with references
  worked out for this benchmark (`ALPACA`; 7 of the answers are wrong);
- SmolLM2 (`--run_demo` or `--answers`): the reasoning recipe's demo config (SmolLM2-135M-Instruct through vLLM,
  the questions of configs/reasoning/questions.jsonl that have a reference), with its language and loop filters
  off and `keep_rejected` on, so that every answer reaches the table (minutes on a CPU).
Prints a Markdown table of every pair, how often ours and math-verify agree, and the time per check of each
(and the ratio).
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

# a phrase of the Alpaca instruction -> (the right answer, whether text-davinci-003's answer is right)
ALPACA = {
    "Calculate the average of [2, 4, 5, 7, 8]": ("5.2", False),
    "Solve the math equation: 10 - 4 x 2": ("2", True),
    "What is the area of a rectangular room if its two sides": ("70", True),
    "Calculate the average value from the given numbers": ("5.25", False),
    "Given 3 integers a, b, c, compute a+b+c": ("9", True),
    "Convert 45 minutes to seconds": ("2700", True),
    "What is the number 16 divided by 4": ("4", True),
    "Divide 887 by 3 using Python": ("887/3", True),
    "Solve 8 x 8": ("64", True),
    "Write a Python program that prints the sum of two numbers": ("30", True),
    "Use the following numbers to solve the following equation": ("8", True),
    "What is the result of multiplying 87 and 183": ("15921", False),
    "Convert the temperature of 32°C to Fahrenheit": ("89.6", True),
    "For the given set of numbers, compute their median": ("5", True),
    "Calculate the median of the following set of numbers": ("27", False),
    "Given the following numbers, what is the greatest common divisor": ("16", True),
    "Create a program that solves the given mathematical question": ("8", True),
    "Calculate the perimeter of a square": ("40", True),
    "Calculate the area of the given rectangle in sq.ft": ("8", True),
    "Calculate the missing value.": ("16\\pi", True),  # the circumference of a circle of radius 8
    "Calculate the area of a square given its length in cm": ("144", True),
    "What is the pH of a solution with a hydronium": ("6", True),
    "Construct a Mathematical expression to find the cost after discount": ("90", True),
    "Calculate the compound interest on the given sum of money": ("477.46", False),  # 1000 * (1.05^8 - 1)
    "What is the greatest common factor of 20 and 45": ("5", True),
    "Calculate 0 to the power of 0": ("1", True),
    "For the following sequence of numbers, calculate the 3rd term": ("18", False),
    "Calculate the following equation: 8 * (25 + 7)": ("256", False),
}


def test_cases() -> list[tuple[str, str, bool | None, str]]:
    """(answer, reference, expected verdict, source) from tests/test_reasoning.py."""
    sys.path.insert(0, str(REPO / "tests"))
    from test_reasoning import ALL_CASES

    return [(answer, reference, expected, "test") for answer, reference, expected in ALL_CASES]


def alpaca_answers() -> list[tuple[str, str, bool | None, str]]:
    """(text-davinci-003's answer, the right answer, whether it is right, "Alpaca") for each `ALPACA` question."""
    records = json.loads((REPO / "data" / "alpaca_5000.json").read_text())
    cases = []
    for phrase, (reference, right) in ALPACA.items():
        (record,) = [r for r in records if phrase in r["instruction"]]
        cases.append((record["output"], reference, right, "Alpaca"))
    return cases


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

    from builders.methods.reasoning.answer_check import answer_is_right, math_text
    from builders.methods.reasoning.math_answers import answers_match, extract_final_answer, parse_reference

    def ours(answer, reference):
        parsed = parse_reference(reference)
        return None if parsed is None else answers_match(extract_final_answer(answer), parsed)

    def math_verify(answer, reference):
        return bool(verify(parse(math_text(reference)), parse(answer)))

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
    parser.add_argument("--run_demo", action="store_true", help="run the reasoning demo for SmolLM2's answers")
    args = parser.parse_args()
    cases = test_cases() + alpaca_answers()
    with tempfile.TemporaryDirectory(prefix="math-answers-") as tmp:
        folder = args.answers
        if folder is None and args.run_demo:
            folder = Path(tmp) / "reasoning"
            run_demo(folder)
        if folder is not None:
            cases += real_answers(folder)
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
    for source in ("test", "Alpaca", "SmolLM2"):
        rows = [v for v in checked if v["source"] == source]
        if not rows:
            continue
        agree = sum(v["ours"] == v["math-verify"] for v in rows)
        line = f"{source}: {len(rows)} checked answers, ours and math-verify agree on {agree}"
        if all(v["expected"] is not None for v in rows):
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
