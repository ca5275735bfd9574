"""Figures for the dataset card, rendered to PNG bytes with matplotlib's Agg canvas (no display, no pyplot)."""

from __future__ import annotations

import io

import numpy as np

LENGTH_HISTOGRAM = "text_length_histogram.png"


def _figure():
    """A figure on matplotlib's Agg canvas (no display, no pyplot) and its one axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _png(fig) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def length_histogram(lengths: list[int], unit: str, column: str) -> bytes:
    """A histogram of text lengths, with the median and p95 marked."""
    values = np.asarray(lengths)
    fig, ax = _figure()
    ax.hist(values, bins=min(50, max(5, len(np.unique(values)))), color="#4c72b0", edgecolor="white")
    for q, style in ((50, "--"), (95, ":")):
        ax.axvline(np.percentile(values, q), color="#c44e52", linestyle=style, label=f"p{q}")
    ax.set_xlabel(f"length of {column} ({unit})")
    ax.set_ylabel("rows")
    ax.set_title(f"Length of {column} over {len(values):,} rows")
    ax.legend()
    return _png(fig)


def text_lengths(texts: list[str], tokenizer=None, batch_size: int = 1000) -> tuple[list[int], str]:
    """Length of each text in the model's tokens (without special tokens), or in words without a tokenizer."""
    if tokenizer is None:
        return [len((t or "").split()) for t in texts], "words"
    lengths: list[int] = []
    for i in range(0, len(texts), batch_size):
        batch = [t or "" for t in texts[i : i + batch_size]]
        lengths.extend(len(ids) for ids in tokenizer(batch, add_special_tokens=False)["input_ids"])
    return lengths, "tokens"


def length_histograms(series: dict[str, list[int]], unit: str, column: str) -> bytes:
    """Two (or more) length distributions on one set of bins, as step outlines so each stays visible."""
    values = {name: np.asarray(v) for name, v in series.items() if len(v)}
    every = np.concatenate(list(values.values()))
    bins = np.histogram_bin_edges(every, bins=min(50, max(5, len(np.unique(every)))))
    fig, ax = _figure()
    for (name, v), color in zip(values.items(), ("#4c72b0", "#c44e52", "#55a868")):
        ax.hist(v, bins=bins, density=True, histtype="step", linewidth=2, color=color, label=f"{name} ({len(v):,})")
    ax.set_xlabel(f"length of {column} ({unit})")
    ax.set_ylabel("share of rows")
    ax.set_title(f"Length of {column}")
    ax.legend()
    return _png(fig)
