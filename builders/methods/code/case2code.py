"""Case2Code's execution stage: run every function on its example inputs in the sandbox and judge the results.

    kept, report = observe(rows, timeout_s=2.0, max_output_chars=200, min_examples=3)

Each row (`function`, `name`, `inputs` as repr strings) gets `examples`: the observed input/output pairs that
survived. Examples are dropped when their input raises (or is blocked, or runs out of memory), when their
output's repr is too long, or when it is not reproducible (it prints a memory address). A function is
dropped when one of its inputs timed out, when every output is the same, or when fewer than `min_examples`
examples survive. `report` holds the counts by reason and the sandbox's throughput.
"""

from __future__ import annotations

import ast
import time
from collections import Counter
from dataclasses import dataclass, field

from builders.methods.code.sandbox import error_kind, isolation_layers, run_many

_EXAMPLE_REASONS = {
    "exception": "input_raises",
    "blocked": "input_blocked",
    "memory": "input_out_of_memory",
    "output_too_long": "output_too_long",
    "repr_failed": "output_repr_fails",
    "crashed": "input_crashes",
    "killed": "input_crashes",
}


@dataclass
class ObserveReport:
    functions_dropped: Counter = field(default_factory=Counter)
    examples_dropped: Counter = field(default_factory=Counter)
    executions: int = 0
    examples_kept: int = 0
    seconds: float = 0.0

    def details(self) -> dict:
        return {
            "executions": self.executions,
            "executions_per_s": round(self.executions / self.seconds, 1) if self.seconds else None,
            "examples_kept": self.examples_kept,
            "examples_dropped": dict(self.examples_dropped.most_common()),
            "sandbox": ", ".join(isolation_layers()),
        }


def _with_literal_inputs(row: dict, report: ObserveReport) -> dict:
    """The row with only the inputs `ast.literal_eval` reads (e.g. `-x` parses as Python but is no literal);
    the others are counted as dropped examples, never a crash."""
    readable = []
    for text in row["inputs"]:
        try:
            ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            report.examples_dropped["input_not_a_literal"] += 1
            continue
        readable.append(text)
    return {**row, "inputs": readable} if len(readable) < len(row["inputs"]) else row


def observe(
    rows: list[dict],
    *,
    timeout_s: float,
    max_output_chars: int,
    min_examples: int,
    memory_mb: int = 1024,
    workers: int | None = None,
) -> tuple[list[dict], ObserveReport]:
    """The rows whose function passed, each with `examples` [{"input", "output"}]; and what happened."""
    report = ObserveReport()
    rows = [_with_literal_inputs(row, report) for row in rows]
    jobs = [(row["function"], row["name"], [ast.literal_eval(text) for text in row["inputs"]]) for row in rows]
    began = time.perf_counter()
    results = run_many(
        jobs,
        workers=workers,
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        max_output_chars=max_output_chars,
        skip_after_timeout=True,  # such a function is dropped anyway
    )
    report.seconds = time.perf_counter() - began
    report.executions = sum(len(job[2]) for job in jobs)
    kept = []
    for row, outcomes in zip(rows, results):
        examples, dropped, reason = judge(row["inputs"], outcomes, min_examples)
        report.examples_dropped.update(dropped)
        if reason:
            report.functions_dropped[reason] += 1
            continue
        report.examples_kept += len(examples)
        kept.append({**row, "examples": examples})
    return kept, report


def judge(inputs: list[str], outcomes: list[dict], min_examples: int) -> tuple[list[dict], Counter, str | None]:
    """(surviving examples, example drops by reason, the function's drop reason or None)."""
    kinds = [error_kind(r) for r in outcomes]
    if "timeout" in kinds:
        return [], Counter(), "timeout"
    if kinds and all(k == "load_failed" for k in kinds):
        return [], Counter(), "load_failed"
    examples, dropped = [], Counter()
    for text, outcome, kind in zip(inputs, outcomes, kinds):
        if kind is not None:
            dropped[_EXAMPLE_REASONS.get(kind, kind)] += 1
        elif " at 0x" in outcome["output"]:
            dropped["output_not_reproducible"] += 1
        else:
            examples.append({"input": text, "output": outcome["output"]})
    if len(examples) < min_examples:
        raised = not examples and set(dropped) == {"input_raises"}
        return [], dropped, "all_inputs_raise" if raised else "too_few_examples"
    if len({e["output"] for e in examples}) == 1:
        return [], dropped, "constant_output"
    return examples, dropped, None
