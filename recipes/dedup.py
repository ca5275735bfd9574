"""Deduplicate any existing dataset: exact, then MinHash near-duplicates; optionally decontaminate and filter.

No model and no generation: the rows of `dataset` go through the same stages the generation recipes end with,
and the output is the same Hub-ready folder (data, dataset card, config, stats; `--push_to_hub` publishes it).

    python recipes/dedup.py --dataset data.jsonl --column text --output_dir outputs/dedup
    python recipes/dedup.py --dataset HuggingFaceTB/cosmopedia-100k --column text --threshold 0.8 \
        --output_dir outputs/cosmopedia-100k-dedup
    python recipes/dedup.py --config configs/dedup/demo.yaml
    python recipes/dedup.py --config configs/dedup/demo.yaml --engine spark      # the same rows, on Spark
    python recipes/dedup.py --dataset data.jsonl --engine spark --spark_master spark://head:7077 \
        --output_dir /shared/dedup                                                # a Spark cluster
    python recipes/dedup.py --config configs/dedup/demo.yaml --engine text-dedup # text-dedup's own decisions

Options: `--tokenizer char` for Chinese or Japanese (auto decides per row), `--exact false` to skip the exact
pass, `--quality_filters true` to run the `quality_*` checks first, `decontaminate: [{path, columns}]` in a
YAML config to remove benchmark overlaps. `engine: memory` runs in this process (threads on all cores); `engine: spark` on Apache Spark (a `local[*]`
session, or the cluster at `spark_master`), with exactly the same kept rows; `engine: text-dedup` lets text-dedup's
own commands decide, in a child process, to match a dataset deduplicated with it (its differences: docs/dedup.md).
"""

from dataclasses import dataclass, replace
from typing import Literal

from builders.config import RecipeConfig, knob, parse_config
from builders.errors import UserError, exit_on_user_error
from builders.filters.quality import quality_checks
from builders.output.card import RecipeInfo
from builders.run import Run


@dataclass
class DedupConfig(RecipeConfig):
    """Deduplicate an existing dataset: exact, then MinHash near-dedup (word or character n-grams)."""

    column: str = knob("text", "column of `dataset` to deduplicate")
    threshold: float = knob(
        0.7, "Jaccard similarity of n-gram sets at or above which rows are near duplicates", above=0, max=1
    )
    ngram: int = knob(5, "n-gram size (words; characters for text without spaces)", min=1)
    num_perm: int = knob(128, "MinHash permutations", min=2)
    tokenizer: Literal["auto", "word", "char"] = knob("auto", "n-grams of words, of characters, or auto (per row)")
    exact: bool = knob(True, "drop rows with the same normalised text first")
    engine: Literal["memory", "spark", "text-dedup"] = knob(
        "memory",
        "memory (this process), spark (the same kept rows), or text-dedup (its own code decides: docs/dedup.md)",
    )
    spark_master: str | None = knob(
        None, "Spark master URL for engine spark (default local[*]: every core here)", affects_data=False
    )
    model: str = knob("none", "no model: this recipe generates nothing")
    quality_filters: bool = knob(False, "run the quality_* checks on `column` before dedup")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.engine == "text-dedup" and self.tokenizer == "char":
            raise UserError(
                "engine 'text-dedup' has word n-grams only; set tokenizer to auto or word, or engine memory"
            )


INFO = RecipeInfo(
    name="dedup",
    title="Deduplicated dataset",
    method="exact and MinHash near-duplicate removal (word or character n-grams, LSH, verified Jaccard)",
    summary="An existing dataset with its exact and near duplicates removed; the first row of each group of "
    "duplicates is kept.",
    tags=["deduplication"],
    generated=False,
)


@exit_on_user_error
def main(argv=None):
    config = parse_config(DedupConfig, argv)
    run = Run(config, replace(INFO, text_column=config.column))

    rows = run.load(columns=[config.column], key_hint="column")
    if config.quality_filters:
        rows = run.filter(rows, quality_checks(config, config.column), stage="quality")
    rows = run.decontaminate(rows, column=config.column)
    rows = run.dedup(
        rows,
        column=config.column,
        threshold=config.threshold,
        ngram=config.ngram,
        num_perm=config.num_perm,
        units=config.tokenizer,
        exact=config.exact,
        force=True,
        backend=config.engine,
        spark_master=config.spark_master,
    )
    run.finish(rows, seed_data=f"`{config.dataset}` (column `{config.column}`)")


if __name__ == "__main__":
    main()
