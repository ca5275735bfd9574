"""What the viewer draws: the funnel as bars, live progress, figures as tables, prompts as Markdown.

Plain HTML with inline styles: it renders the same in any Gradio theme, and a test reads its numbers as text.
"""

from __future__ import annotations

import json
import re
import time
from html import escape

import pandas as pd

from builders.view.progress import Progress
from builders.view.reading import RunFolder, as_text

BAR = "#4f7fd9"
DROP = "#e07b5f"
MUTED = "color:#6b7280"
SAMPLING_KEYS = (
    "model",
    "backend",
    "temperature",
    "top_p",
    "top_k",
    "max_new_tokens",
    "repetition_penalty",
    "seed",
    "batch_size",
    "dataset",
    "num_samples",
)


def funnel_html(stats: dict) -> str:
    """Each stage as a bar as long as its rows out (against the largest stage), with rows in -> out and its drops
    by reason; `data-stage` names the stage."""
    stages = stats.get("stages", [])
    if not stages:
        return f"<p style='{MUTED}'>no funnel yet: stats.json is written when the run finishes (see Live)</p>"
    widest = max(max(s["rows_in"], s["rows_out"]) for s in stages) or 1
    lines = []
    for s in stages:
        kept = 100 * s["rows_out"] / widest
        lost = 100 * (s["rows_in"] - s["rows_out"]) / widest
        drops = ", ".join(f"{escape(str(k))}: {v}" for k, v in s["dropped"].items())
        lines.append(
            f"<div class='funnel-stage' data-stage='{escape(s['name'])}' style='margin:6px 0'>"
            "<div style='display:grid;grid-template-columns:110px minmax(80px,1fr) 100px;gap:10px;align-items:center'>"
            f"<div style='font-weight:600'>{escape(s['name'])}</div>"
            "<div style='display:flex;height:20px;background:#f1f3f6;border-radius:4px;overflow:hidden'>"
            f"<div style='width:{kept:.1f}%;background:{BAR}'></div>"
            f"<div style='width:{lost:.1f}%;background:{DROP}'></div></div>"
            f"<div style='font-variant-numeric:tabular-nums'>{s['rows_in']} &rarr; {s['rows_out']}</div></div>"
            + (f"<div style='margin-left:120px;font-size:0.9em;{MUTED}'>dropped {drops}</div>" if drops else "")
            + "</div>"
        )
    legend = (
        f"<div style='{MUTED};font-size:0.85em;margin-top:6px'><span style='color:{BAR}'>&#9632;</span> rows out "
        f"&nbsp; <span style='color:{DROP}'>&#9632;</span> dropped &nbsp; (rows in &rarr; rows out)</div>"
    )
    return f"<div id='funnel'>{''.join(lines)}{legend}</div>"


def drops_table(stats: dict) -> pd.DataFrame:
    rows = [
        {"stage": s["name"], "reason": reason, "rows": n}
        for s in stats.get("stages", [])
        for reason, n in s["dropped"].items()
    ]
    return pd.DataFrame(rows, columns=["stage", "reason", "rows"])


def figures_table(run: RunFolder) -> pd.DataFrame:
    """Tokens, throughput, text lengths and diversity from stats.json, one figure a row."""
    stats = run.stats
    rows = [("rows kept", len(run.rows) if run.finished else "-")]
    rows += [(f"{k} tokens", v) for k, v in stats.get("tokens", {}).items()]
    length = stats.get("text_length", {})
    rows += [
        (f"{length.get('column')} length {k} ({length.get('unit')})", v)
        for k, v in length.items()
        if k not in ("column", "unit")
    ]
    rows += [(f"diversity: {k}", v) for k, v in stats.get("diversity", {}).items()]
    for stage in stats.get("stages", []):
        rows += [(f"{stage['name']}: {k.replace('_', ' ')}", v) for k, v in stage.get("details", {}).items()]
    generation = stats.get("generation", {})
    rows += [(f"generation: {k.replace('_', ' ')}", v) for k, v in generation.items() if not isinstance(v, list)]
    if "elapsed_s" in stats:
        rows.append(("elapsed (s)", stats["elapsed_s"]))
    return pd.DataFrame([(k, as_text(v)) for k, v in rows], columns=["figure", "value"])


def sampling_table(config: dict) -> pd.DataFrame:
    rows = [(k, as_text(config[k])) for k in SAMPLING_KEYS if k in config]
    return pd.DataFrame(rows, columns=["setting", "value"])


def header_md(run: RunFolder) -> str:
    recipe = run.stats.get("recipe") or run.run.get("recipe", "?")
    model = run.stats.get("model") or run.config.get("model", "?")
    state = "finished" if run.finished else "running, or stopped before it finished (see Live)"
    return f"**{escape(run.label)}** · recipe `{recipe}` · model `{model}` · {state}"


def progress_html(progress: Progress) -> str:
    """The headline (batches, rows so far, throughput, drops so far) and one line per generation stage."""
    state = "finished" if progress.complete else "in progress (or stopped)"
    when = time.strftime("%H:%M:%S", time.localtime(progress.read_at))
    latest = max((s.latest for s in progress.stages), default=0)
    ago = f" · the latest batch finished {progress.read_at - latest:.0f} s ago" if latest else ""
    lines = [
        f"<div style='font-size:1.3em'><b id='live-rows'>{progress.rows}</b> rows generated so far, in "
        f"<b id='live-batches'>{progress.batches}</b> finished batches</div>"
        f"<div style='{MUTED}'>run {state} · read at {when}{ago}</div>"
    ]
    if not progress.stages:
        lines.append(f"<p style='{MUTED}'>no finished batch yet</p>")
    for s in progress.stages:
        rate = f"{s.rows_per_s:.2f} rows/s, {s.tokens_per_s:.1f} tokens/s" if s.rows_per_s else "rate after 2 batches"
        drops = f"failed {s.failed} · empty {s.empty} · truncated {s.truncated}"
        lines.append(
            f"<div class='live-stage' data-stage='{escape(s.name)}' style='margin-top:8px'><b>{escape(s.name)}</b>: "
            f"{s.batches} batches · {s.rows} rows · {s.completion_tokens} tokens · {rate} · {drops}</div>"
        )
    return "".join(lines)


def prompt_md(value) -> str:
    """A prompt as Markdown: a chat (list of messages) as its turns, a string as it is."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list) and all(isinstance(m, dict) and "content" in m for m in value):
        return "\n\n---\n\n".join(f"**{m.get('role', '?')}**\n\n{literal_tags(m['content'])}" for m in value)
    if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
        return "*(none)*"
    if isinstance(value, str):
        return literal_tags(value)
    return f"```json\n{json.dumps(value, indent=2, default=str)}\n```"


def literal_tags(text: str) -> str:
    """Markdown in which `<passage>`-style tags of a prompt stay visible: `<` outside code fences becomes `&lt;`
    (an HTML sanitizer would drop the tag, and with some, what it encloses)."""
    parts = re.split(r"(```.*?```)", text, flags=re.S)
    return "".join(part if part.startswith("```") else part.replace("<", "&lt;") for part in parts)


def plain(value):
    """A cell as a JSON value for the metadata pane (numpy scalars and arrays as Python ones)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return value


def preview(df: pd.DataFrame, columns: list[str], chars: dict[str, int] | None = None) -> pd.DataFrame:
    """`df`'s `columns` as one-line texts of at most `chars[column]` characters (80 unless given), with the row
    number first (what a selection looks up)."""
    out = pd.DataFrame({"#": df.index.astype(int)})
    for name in columns:
        texts = df[name].map(as_text).str.replace(r"\s+", " ", regex=True)
        limit = (chars or {}).get(name, 80)
        out[name] = [t if len(t) <= limit else t[: limit - 1] + "…" for t in texts]
    return out
