"""The run's funnel: rows in, rows out and drops by reason for every stage, plus token totals.

Written to `stats.json` as
`{"recipe", "model", "stages": [{"name", "rows_in", "rows_out", "dropped": {reason: n}}],
  "tokens": {"prompt", "completion"}, "elapsed_s", ...}` and shown as a table in the dataset card.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Stage:
    name: str
    rows_in: int
    rows_out: int
    dropped: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # e.g. dedup clusters, per-benchmark contamination

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "rows_in": self.rows_in, "rows_out": self.rows_out, "dropped": self.dropped}
        if self.details:
            out["details"] = self.details
        return out


@dataclass
class Funnel:
    recipe: str
    model: str
    stages: list[Stage] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    def record(
        self, name: str, rows_in: int, rows_out: int, dropped: Counter | dict | None = None, **details
    ) -> Stage:
        dropped = dict(sorted((dropped or {}).items(), key=lambda kv: (-kv[1], kv[0])))
        if rows_in - rows_out != sum(dropped.values()) and rows_out <= rows_in:
            # A stage that loses rows without saying why is a bug; make it visible instead of hiding it.
            dropped["unaccounted"] = rows_in - rows_out - sum(dropped.values())
        stage = Stage(name, rows_in, rows_out, dropped, details)
        self.stages.append(stage)
        return stage

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "model": self.model,
            "stages": [s.to_dict() for s in self.stages],
            "tokens": {"prompt": self.prompt_tokens, "completion": self.completion_tokens},
            "elapsed_s": round(time.time() - self.started, 2),
            **self.extra,
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")

    def table(self) -> str:
        """A Markdown table of the funnel, for the card and the end-of-run summary."""
        lines = ["| stage | rows in | rows out | dropped (reason: rows) |", "|---|---:|---:|---|"]
        for s in self.stages:
            reasons = ", ".join(f"{k}: {v}" for k, v in s.dropped.items()) or "-"
            lines.append(f"| {s.name} | {s.rows_in} | {s.rows_out} | {reasons} |")
        return "\n".join(lines)
