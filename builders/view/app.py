"""The viewer's Gradio app: Overview, Rows, Rejected, Live and (with a second run) Compare.

Every tab reads through `reading.py` and `progress.py`; no callback writes anywhere but Gradio's own cache, and
no model is loaded. The row browsers page through pandas frames held in memory (a viewer of one run's
output: up to a few hundred thousand rows).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import gradio as gr
import pandas as pd

from builders.output.sink import RUN_FILE
from builders.view import render
from builders.view.progress import latest_rows, output_column, read_progress
from builders.view.reading import RunFolder, align, categories, haystack, page_of, search

PAGE_SIZE = 15
MAX_FILTERS = 6
LIVE_SECONDS = 2.0


def build_app(run: RunFolder, other: RunFolder | None = None) -> gr.Blocks:
    with gr.Blocks(title=f"builders · {run.label}") as app:
        gr.Markdown(render.header_md(run))
        with gr.Tabs():
            with gr.Tab("Overview", id="overview"):
                overview_tab(run)
            with gr.Tab("Rows", id="rows"):
                rows_tab(run)
            with gr.Tab("Rejected", id="rejected"):
                rejected_tab(run)
            with gr.Tab("Live", id="live"):
                live_tab(run, app)
            if other is not None:
                with gr.Tab("Compare", id="compare"):
                    compare_tab(run, other)
    return app


def overview_tab(run: RunFolder) -> None:
    gr.Markdown("### Funnel: rows in and out of each stage")
    gr.HTML(render.funnel_html(run.stats), elem_id="overview-funnel")
    drops = render.drops_table(run.stats)
    if len(drops):
        gr.Dataframe(drops, label="drops by reason", interactive=False, elem_id="overview-drops")
    with gr.Row():
        with gr.Column():
            figures = render.figures_table(run)
            gr.Dataframe(figures, label="tokens, lengths, diversity", interactive=False, column_widths=["72%", "28%"])
        with gr.Column():
            gr.Dataframe(render.sampling_table(run.config), label="model and sampling", interactive=False)
    for image in run.images:
        gr.Image(str(image), label=image.stem.replace("_", " "), interactive=False, buttons=[])
    if run.card:
        with gr.Accordion("dataset card (README.md)", open=False):
            gr.Markdown(run.card)


def rows_tab(run: RunFolder) -> None:
    df = run.rows
    if df.empty:
        gr.Markdown("No rows yet: `data/` is written when the run finishes. The Live tab shows its progress.")
        return
    prompt, output = run.text_columns(df)
    row_browser(df, "rows", prompt, output, first=[])


def rejected_tab(run: RunFolder) -> None:
    df = run.rejected
    counts = render.drops_table(run.stats)
    if df.empty:
        why = "`keep_rejected: true` writes them" if run.finished else "they are written when the run finishes"
        gr.Markdown(f"No rejected rows in this folder ({why}); the funnel's drops by reason:")
        if len(counts):
            gr.Dataframe(counts, interactive=False)
        return
    grouped = df.groupby(["stage", "reason"], sort=False).size().reset_index(name="rows")
    gr.Dataframe(grouped, label="rejected rows by stage and reason", interactive=False, elem_id="rejected-groups")
    prompt, output = run.text_columns(df)
    row_browser(df, "rejected", prompt, output, first=["stage", "reason"])


def row_browser(df: pd.DataFrame, name: str, prompt: str | None, output: str | None, first: list[str]) -> None:
    """Search, filters on the label columns, a paged table; a selected row opens as prompt -> output + metadata."""
    filters = list(categories(df, skip=(prompt, output), keep=tuple(first)).items())[:MAX_FILTERS]
    labels = [*first, *[c for c, _ in filters if c not in first]]
    shown = [*labels, *[c for c in (prompt, output) if c]]

    def details(index: int):
        row = df.loc[index]
        meta = {k: render.plain(v) for k, v in row.items() if k not in (prompt, output)}
        return (
            render.prompt_md(row[prompt]) if prompt else "",
            render.prompt_md(row[output]) if output else "",
            meta,
        )

    panes = [f"prompt (`{prompt}`)", f"output (`{output}`)"]
    _browser(df, name, filters, shown, panes, details, chars={prompt: 60})


def _browser(df, name: str, filters, shown: list[str], panes: list[str], details: Callable, chars=None) -> None:
    texts = haystack(df)

    def show(text, number, *values):
        picked = {column: (v if v != "(all)" else None) for (column, _), v in zip(filters, values)}
        hits = search(df, text, picked, texts)
        rows, number, pages = page_of(hits, number, PAGE_SIZE)
        summary = f"**{len(hits)}** of {len(df)} rows match · page {number} of {pages}"
        return render.preview(rows, shown, chars), summary, number

    def select(evt: gr.SelectData):
        return details(int(evt.row_value[0]))

    with gr.Row():
        query = gr.Textbox(label="search (any column)", placeholder="words to find", scale=3, elem_id=f"{name}-search")
        choices = [
            gr.Dropdown(["(all)", *values], value="(all)", label=column, scale=1, elem_id=f"{name}-filter-{column}")
            for column, values in filters
        ]
    first_page, summary, _ = show("", 1, *["(all)"] * len(filters))
    count = gr.Markdown(summary, elem_id=f"{name}-count")
    table = gr.Dataframe(first_page, interactive=False, wrap=False, elem_id=f"{name}-table", max_height=520)
    with gr.Row():
        previous = gr.Button("← previous", size="sm")
        page = gr.Number(value=1, label="page", precision=0, minimum=1, scale=0, min_width=90)
        following = gr.Button("next →", size="sm")
    gr.Markdown("Select a row to open it.")
    with gr.Row(equal_height=False):
        with gr.Column(variant="panel"):
            gr.Markdown(f"**{panes[0]}**")
            left = gr.Markdown(elem_id=f"{name}-left")
        with gr.Column(variant="panel"):
            gr.Markdown(f"**{panes[1]}**")
            right = gr.Markdown(elem_id=f"{name}-right")
    meta = gr.JSON(label="metadata", elem_id=f"{name}-meta")

    inputs, outputs = [query, page, *choices], [table, count, page]
    for trigger in (query.submit, *(c.change for c in choices)):
        trigger(lambda text, _, *values: show(text, 1, *values), inputs, outputs)
    page.submit(show, inputs, outputs)
    previous.click(lambda text, n, *v: show(text, (n or 1) - 1, *v), inputs, outputs)
    following.click(lambda text, n, *v: show(text, (n or 1) + 1, *v), inputs, outputs)
    table.select(select, None, [left, right, meta])


def live_tab(run: RunFolder, app: gr.Blocks) -> None:
    gr.Markdown(
        "Progress of the generation, read from the finished batches in `.checkpoints/` "
        f"(refreshed every {LIVE_SECONDS:g} s)."
    )
    status = gr.HTML(elem_id="live-status")
    latest = gr.Dataframe(label="the latest finished batch", interactive=False, wrap=False, elem_id="live-latest")

    def refresh():
        progress = read_progress(run.checkpoints, complete=_complete(run))
        rows = pd.DataFrame()
        if progress.stages:
            stage = max(progress.stages, key=lambda s: s.latest)
            batch = latest_rows(stage)
            out = output_column(batch)
            columns = [c for c in ("prompt", out) if c in batch.columns] or list(batch.columns)[:3]
            rows = render.preview(batch, columns, {"prompt": 60, out: 100})
        return render.progress_html(progress), rows

    timer = gr.Timer(LIVE_SECONDS)
    timer.tick(refresh, None, [status, latest])
    app.load(refresh, None, [status, latest])


def _complete(run: RunFolder) -> bool:
    """Whether the run has finished, from run.json as it is now (the run rewrites it when it finishes)."""
    path = run.path / RUN_FILE
    return bool(json.loads(path.read_text()).get("complete")) if path.exists() else run.finished


def compare_tab(run: RunFolder, other: RunFolder) -> None:
    gr.Markdown(f"**A** = {run.label} · **B** = {other.label}")
    with gr.Row():
        for label, side in (("A", run), ("B", other)):
            with gr.Column():
                gr.Markdown(f"#### {label}: {side.label}")
                gr.HTML(render.funnel_html(side.stats), elem_id=f"compare-funnel-{label}")
    prompt_a, output_a = run.text_columns(run.rows)
    prompt_b, output_b = other.text_columns(other.rows)
    if not (prompt_a and output_a and prompt_a == prompt_b and output_b):
        gr.Markdown("Rows are aligned on a prompt column both runs share; these two have none.")
        return
    aligned = align(run.rows, other.rows, prompt_a, output_a, output_b)
    gr.Markdown(f"### Rows aligned on `{prompt_a}`: {len(aligned)} prompts")

    def details(index: int):
        row = aligned.loc[index]
        return render.prompt_md(row["A"]), render.prompt_md(row["B"]), {"prompt": row["prompt"]}

    panes = [f"A: {output_a}", f"B: {output_b}"]
    _browser(aligned, "compare", [], ["prompt", "A", "B"], panes, details, chars={"prompt": 50, "A": 60, "B": 60})
