"""Seed curation for Cosmopedia: cluster web seeds, let the model name and grade each cluster, keep the good ones.

Cosmopedia's method: embed web samples, cluster them, show the model each cluster's most central texts and ask
for the topic and its educational value, drop the clusters not worth a textbook, and give every kept seed its
cluster's topic, which fills the topic slot of the Cosmopedia prompts (`recipes/cosmopedia.py` reads `topic`).

    python recipes/curate_seeds.py --config configs/curate_seeds/demo.yaml
    python recipes/curate_seeds.py --config configs/curate_seeds/default.yaml
    python recipes/cosmopedia.py --config configs/cosmopedia/default.yaml --dataset outputs/curated-seeds

Run it as one process (`python`, not `accelerate launch`): the model labels only a few hundred clusters.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np

from builders.config import RecipeConfig, knob, parse_config
from builders.dedup.embeddings import EMBEDDED_MINILM
from builders.errors import UserError, exit_on_user_error
from builders.methods.curate_seeds.clustering import (
    CLUSTER_ID,
    assign_clusters,
    central_rows,
    cluster_picture,
    cluster_sample,
    fit_sample,
)
from builders.methods.curate_seeds.curation import (
    LABEL_COLUMNS,
    add_labels,
    append_inputs,
    central_texts,
    cluster_prompts,
    cluster_summary,
    cluster_table,
    curation_checks,
    describe_inputs,
    kept_clusters,
    long_enough,
    read_labels,
)
from builders.methods.curate_seeds.prompts import DEFAULT_TEMPLATE, LABEL_PATTERN, SCORE_MAX, SCORE_MIN, check_template
from builders.output.card import RecipeInfo
from builders.run import Run


@dataclass
class CurateSeedsConfig(RecipeConfig):
    """Seed curation: embed -> cluster -> label each cluster (topic, educational score) -> keep the good clusters."""

    text_column: str = knob("text", "column of `dataset` holding the seed text")
    extra_datasets: list = knob(
        [], "more inputs appended to `dataset`: [{path, column?, split?}]; then only text and `source` are kept"
    )
    min_text_chars: int = knob(0, "drop seeds shorter than this many characters before clustering (0: keep all)")
    embedding_model: str = knob(EMBEDDED_MINILM, "sentence-transformers model (all-minilm-l6-v2 is embedded)")
    embedding_batch_size: int | None = knob(
        None, "texts per embedding batch; null: 16 on the CPU (fastest measured), 256 on a GPU", affects_data=False
    )
    cluster_method: Literal["kmeans", "hdbscan"] = knob("kmeans", "kmeans (num_clusters) or hdbscan (finds the count)")
    num_clusters: int = knob(145, "clusters for k-means (Cosmopedia: 145 on 100k web samples)", min=1)
    min_cluster_size: int = knob(25, "hdbscan only: the fewest sample rows that make a cluster", min=1)
    fit_sample_size: int = knob(
        100_000, "clusters are fitted on this many rows; the rest join the nearest centroid", min=1
    )
    examples_per_cluster: int = knob(8, "central texts shown to the model per cluster", min=1)
    example_chars: int = knob(500, "each central text is cut to this many characters in the prompt", min=1)
    label_template: str = knob(
        DEFAULT_TEMPLATE, "labelling prompt: a template under builders/prompts or a .jinja file"
    )
    structured_labels: bool = knob(
        True, "constrain the answer to its JSON shape (a regex; vLLM or a vLLM server; elsewhere free text is parsed)"
    )
    min_educational_score: int = knob(
        3, f"drop clusters scored under this ({SCORE_MIN} to {SCORE_MAX})", min=SCORE_MIN, max=SCORE_MAX
    )
    # a label is a short judgement, not a text: greedy, and few tokens
    max_new_tokens: int = knob(96, "most tokens in a cluster's label answer")
    temperature: float = knob(0.0, "sampling temperature of the labels (0: greedy)")
    dedup: bool = knob(False, "MinHash near-dedup of the seeds before clustering")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.cluster_method == "kmeans" and self.fit_sample_size < self.num_clusters:
            raise UserError(
                f"fit_sample_size ({self.fit_sample_size}) is smaller than num_clusters ({self.num_clusters}); "
                "k-means needs at least one sample row per cluster: raise fit_sample_size"
            )


INFO = RecipeInfo(
    name="curate_seeds",
    title="Curated seed texts with topics",
    method="Cosmopedia's seed curation (embed, cluster, label each cluster's topic and educational value with a "
    "language model, keep the clusters worth a textbook)",
    summary="Seed texts for Cosmopedia-style generation, grouped into clusters by meaning; each kept seed carries "
    "its cluster's topic and educational-value score as judged by a language model.",
    paper_title="Cosmopedia: how to create large-scale synthetic data for pre-training",
    paper_url="https://huggingface.co/blog/cosmopedia",
    task_categories=["text-generation"],
    tags=["cosmopedia", "seed-curation", "clustering"],
    text_column="topic",
    templates="`builders/prompts/curate_seeds/label_cluster.jinja` (a cluster's central texts -> topic and score)",
    columns={
        "topic": "the topic of the seed's cluster, named by the model",
        CLUSTER_ID: "the seed's cluster (nearest centroid)",
        "educational_score": f"the cluster's educational value, {SCORE_MIN} (none) to {SCORE_MAX} (textbook material)",
        "source": "the input file the seed came from",
    },
)


@exit_on_user_error
def main(argv=None):
    config = parse_config(CurateSeedsConfig, argv)
    check_template(config.label_template)
    run = Run(config, INFO)
    text = config.text_column

    seeds = run.load(columns=[text], key_hint="text_column")
    if config.extra_datasets:
        mixed = append_inputs(seeds, config.extra_datasets, text, config.num_samples)
        run.record("extra_datasets", len(seeds), len(mixed), added=len(mixed) - len(seeds))
        seeds = mixed
    seeds = seeds.remove_columns([c for c in LABEL_COLUMNS if c in seeds.column_names])  # ours replace them
    if config.min_text_chars:
        seeds = run.filter(seeds, [long_enough(text, config.min_text_chars)], stage="length")
    seeds = run.dedup(seeds, column=text)
    if len(seeds) == 0:
        raise UserError("no seed is left to cluster (see min_text_chars); lower min_text_chars or give more rows")

    sample = fit_sample(len(seeds), config.fit_sample_size, config.seed)
    clusters = cluster_sample(
        seeds.select(sample)[text],
        sample,
        method=config.cluster_method,
        num_clusters=config.num_clusters,
        seed=config.seed,
        model=config.embedding_model,
        batch_size=config.embedding_batch_size,
        min_cluster_size=config.min_cluster_size,
        num_threads=run.num_proc,
    )
    seeds, assign_s = assign_clusters(
        seeds, text, clusters, config.embedding_model, config.embedding_batch_size, num_threads=run.num_proc
    )
    sizes = np.bincount(seeds[CLUSTER_ID], minlength=clusters.num_clusters)
    run.record("cluster", len(seeds), len(seeds), **clusters.details, assign_s=round(assign_s, 2))

    central = central_texts(seeds, text, central_rows(seeds, clusters.num_clusters, config.examples_per_cluster))
    prompts = cluster_prompts(central, sizes, config.label_template, config.example_chars)
    pattern = {"regex": LABEL_PATTERN} if config.structured_labels else None
    structured = run.structured(pattern, "structured_labels", "set structured_labels: false")
    answers = run.generate(
        prompts,
        prompt_column="prompt",
        output_column="answer",
        stage="label_clusters",
        sampling=run.sampling(structured=structured),
    )
    labels = read_labels(answers)

    seeds = seeds.map(add_labels, batched=True, fn_kwargs={"labels": labels}, desc="Labelling seeds")
    seeds = run.filter(seeds, curation_checks(config.min_educational_score), stage="educational_value")

    kept = kept_clusters(labels, config.min_educational_score)
    run.funnel.extra["clusters"] = cluster_summary(labels, kept)  # stats.json: every cluster, kept or not
    picture = cluster_picture(clusters, {c: x.topic for c, x in labels.items()}, kept, config.seed)
    table = cluster_table(labels, config.min_educational_score)
    run.finish(
        seeds,
        columns=[c for c in seeds.column_names if c not in LABEL_COLUMNS] + list(LABEL_COLUMNS),
        seed_data=describe_inputs(config.dataset, text, config.extra_datasets),
        card_sections=[("Clusters", f"{table}\n\n![The seed clusters](images/clusters.png)")],
        images={"clusters.png": picture},
    )


if __name__ == "__main__":
    main()
