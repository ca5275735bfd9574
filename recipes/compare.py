"""How close is a reproduction to its original? Schema, rows, length distributions, distinct-n, vocabulary,
ROUGE-L between rows aligned on a key (same prompt, same seed), and topic coverage (embedding clusters of the
reference that the dataset reaches).

No model and no generation: the measurements are the `evaluate` modules in `builders/output/metrics/`. The
output is a report folder like a recipe's (card with the figures and a picture, stats.json, the figures as rows
in data/), which `recipes/push.py` publishes.

    python recipes/compare.py --dataset outputs/self_instruct --column instruction \
        --reference data/alpaca_5000.json --output_dir outputs/compare-alpaca
    python recipes/compare.py --dataset outputs/cosmopedia --reference HuggingFaceTB/cosmopedia-100k \
        --key prompt --output_dir outputs/compare-cosmopedia
    python recipes/compare.py        # the offline default: the 175 seed instructions against 5,000 Alpaca ones

A generation recipe given `compare_to: REFERENCE` adds the same comparison to its own card.
"""

from dataclasses import dataclass

from datasets import Dataset

from builders.config import RecipeConfig, knob, parse_config
from builders.data import load_rows
from builders.errors import UserError, exit_on_user_error
from builders.output.card import RecipeInfo
from builders.output.compare import compare
from builders.run import Run


@dataclass
class CompareConfig(RecipeConfig):
    """Compare a dataset (`dataset`, e.g. a reproduction) with a reference (`reference`, e.g. the original)."""

    reference: str | None = knob(None, "the reference: a local file, a folder, or a Hub id")
    reference_split: str = knob("train", "split of `reference`")
    reference_config: str | None = knob(None, "Hub config name of `reference`")
    column: str = knob("text", "column of `dataset` compared")
    reference_column: str | None = knob(None, "column of `reference` compared (null: the same name as `column`)")
    key: str | None = knob(None, "column both share that aligns rows for ROUGE-L (null: prompt, seed, ... if shared)")
    topics: bool = knob(True, "topic coverage: embed both sides and cluster the reference (slower)")
    embedding_model: str = knob("all-minilm-l6-v2", "sentence-transformers model for topic coverage")
    num_clusters: int = knob(20, "k-means clusters of the reference for topic coverage", min=1)
    max_rows: int = knob(5000, "rows of each side sampled for the distribution figures", min=1)
    model: str = knob("none", "no model: this recipe generates nothing")
    dedup: bool = knob(False, "not used: the comparison removes nothing")


INFO = RecipeInfo(
    name="compare",
    title="Comparison of a dataset with a reference",
    method="a comparison of a dataset with a reference dataset (schema, lengths, distinct-n, vocabulary, ROUGE-L on "
    "aligned rows, topic coverage), measured with `evaluate` modules",
    summary="How close a synthetic dataset (e.g. a reproduction) is to a reference (e.g. the public original): each "
    "row of this dataset is one figure of the comparison; the card explains them.",
    tags=["comparison", "evaluation"],
    text_column=None,
    generated=False,
    columns={"figure": "the figure's name (dotted path in stats.json's `comparison`)", "value": "its value"},
)


def figure_rows(figures: dict, prefix: str = "") -> dict[str, list[str]]:
    """The figures, flattened to (dotted name, value) rows; per-row lists are left to stats.json."""
    rows = {"figure": [], "value": []}
    for name, value in figures.items():
        if isinstance(value, dict):
            nested = figure_rows(value, f"{prefix}{name}.")
            rows["figure"] += nested["figure"]
            rows["value"] += nested["value"]
        elif not isinstance(value, list) or len(value) <= 10:
            rows["figure"].append(prefix + name)
            rows["value"].append(str(value))
    return rows


@exit_on_user_error
def main(argv=None):
    config = parse_config(CompareConfig, argv)
    if not config.reference:
        raise UserError("compare needs a reference: set --reference to a file, a folder or a Hub id")
    run = Run(config, INFO)
    ours = run.load(columns=[config.column], key_hint="column")
    reference = load_rows(
        config.reference,
        config.reference_split,
        config.reference_config,
        None,
        [config.reference_column or config.column],
        what="reference",
        key_hint="reference_column",
    )
    result = compare(
        ours,
        reference,
        column=config.column,
        reference_column=config.reference_column,
        key=config.key,
        topics=config.topics,
        embedding_model=config.embedding_model,
        num_clusters=config.num_clusters,
        max_rows=config.max_rows,
        seed=config.seed,
    )
    run.funnel.extra["comparison"] = result.figures
    run.finish(
        Dataset.from_dict(figure_rows(result.figures)),
        seed_data=f"`{config.dataset}` (column `{config.column}`) against `{config.reference}`",
        card_sections=result.sections,
        images=result.images,
    )


if __name__ == "__main__":
    main()
