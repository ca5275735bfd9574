"""The dataset card: huggingface_hub's `DatasetCard`, rendered from `templates/dataset_card.md`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from datasets import Dataset
from huggingface_hub import DatasetCard, DatasetCardData

from builders.output.funnel import Funnel

TEMPLATE = Path(__file__).parent / "templates" / "dataset_card.md"
PACKAGE = "synthetic-data-builders"


def made_with(project_url: str | None) -> str:
    """How the card names the code that made the data: the package and its version, linked only to a URL the
    user gave (`project_url`); never a link we cannot vouch for."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        name = f"{PACKAGE} {version(PACKAGE)}"
    except PackageNotFoundError:  # run from a checkout that was never installed
        name = PACKAGE
    return f"[{name}]({project_url})" if project_url else f"`{name}`"


@dataclass
class RecipeInfo:
    """What a recipe tells the card about its method and its columns."""

    name: str
    title: str
    method: str
    summary: str
    paper_title: str | None = None
    paper_url: str | None = None
    task_categories: list[str] = field(default_factory=lambda: ["text-generation"])
    language: list[str] = field(default_factory=lambda: ["en"])
    tags: list[str] = field(default_factory=list)
    text_column: str | None = "text"  # None: no text column (no length histogram, no diversity figures)
    templates: str = "none"
    columns: dict[str, str] = field(default_factory=dict)
    generated: bool = True  # False: the recipe transforms an existing dataset (no model wrote the rows)


def size_category(n: int) -> str:
    for limit, label in [
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
        (100_000_000, "10M<n<100M"),
        (1_000_000_000, "100M<n<1B"),
    ]:
        if n < limit:
            return label
    return "1B<n<10B"


def length_stats(values: list[int]) -> dict[str, float] | None:
    if not values:
        return None
    arr = np.asarray(values)
    return {
        "mean": round(float(arr.mean()), 1),
        "median": float(np.median(arr)),
        "p95": float(np.percentile(arr, 95)),
        "max": int(arr.max()),
    }


def build_card(
    ds: Dataset,
    info: RecipeInfo,
    config,
    funnel: Funnel,
    *,
    seed_data: str,
    has_rejected: bool = False,
    histogram: str | None = None,
    diversity: dict | None = None,
    sections: list[tuple[str, str]] = (),
    lengths: list[int] | None = None,
    length_unit: str = "tokens",
) -> DatasetCard:
    """The card of a finished run. `lengths` are the text lengths (in `length_unit`) of the rows, measured
    before the output columns were chosen; without them the `completion_tokens` column is used if present."""
    # The default config needs no `configs:` block: `data/train-*` is the standard layout. Declaring it anyway makes
    # datasets (5.2) cache a local folder under its basename alone, so `load_dataset(output_dir)` after a rerun, or
    # of another folder with the same name, returns stale rows. Rejected rows (`rejected/rejected-*.parquet`) carry
    # no split name, so split inference leaves them out.
    configs = None
    if config.hub_config_name != "default":
        configs = [{"config_name": config.hub_config_name, "data_files": [{"split": "train", "path": "data/train-*"}]}]
    card_data = DatasetCardData(
        license=config.license,
        language=info.language,
        task_categories=info.task_categories,
        size_categories=[size_category(len(ds))],
        pretty_name=config.pretty_name or info.title,
        tags=list(dict.fromkeys((["synthetic"] if info.generated else []) + [info.name, *info.tags])),
        **({"configs": configs} if configs else {}),
    )
    if lengths is None:
        lengths = ds["completion_tokens"] if "completion_tokens" in ds.column_names else []
    example = {k: _short(v) for k, v in ds[0].items()} if len(ds) else {}
    sampling = (
        f"max_new_tokens={config.max_new_tokens}, temperature={config.temperature}, top_p={config.top_p}, "
        f"top_k={config.top_k}, repetition_penalty={config.repetition_penalty}"
    )
    load_path = config.hub_repo_id or config.output_dir
    return DatasetCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        title=config.pretty_name or info.title,
        summary=info.summary,
        recipe=info.name,
        generated=info.generated,
        method=info.method,
        paper_title=info.paper_title,
        paper_url=info.paper_url,
        made_with=made_with(config.project_url),
        text_column=info.text_column,
        model=config.model,
        model_revision=config.model_revision,
        backend=config.backend,
        use_chat_template=config.use_chat_template,
        sampling=sampling,
        seed_data=seed_data,
        templates=info.templates,
        seed=config.seed,
        funnel=funnel.table(),
        stage_details=[(s.name, s.details) for s in funnel.stages if s.details],
        num_rows=len(ds),
        prompt_tokens=funnel.prompt_tokens,
        completion_tokens=funnel.completion_tokens,
        length_stats=length_stats(lengths),
        length_unit=length_unit,
        histogram=histogram,
        diversity=diversity,
        sections=sections,
        has_rejected=has_rejected,
        columns=[(c, info.columns.get(c, "")) for c in ds.column_names],
        example=json.dumps(example, indent=2, ensure_ascii=False),
        load_path=load_path,
        load_config=config.hub_config_name if config.hub_config_name != "default" else None,
        command=reproduce_command(info.name),
        config_yaml=yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True),
    )


def reproduce_command(recipe: str) -> str:
    """The command that reproduces the run: the recipe with the saved config (secrets never enter it)."""
    return f"python recipes/{recipe}.py --config config.yaml"


def _short(value, limit: int = 600):
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + " ..."
    return value
