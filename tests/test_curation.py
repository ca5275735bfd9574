"""Seed curation after clustering (builders/methods/curate_seeds/curation.py): labels read from the model's answers, the seeds of a
cluster scored under the threshold dropped as `low_educational_value`, and the card's cluster table.

The recipe test runs the tiny random model, whose scores cannot be chosen; here the answers are written out."""

import re

from datasets import Dataset

from builders.filters.checks import REASON, apply_checks
from builders.methods.curate_seeds.clustering import CLUSTER_ID
from builders.methods.curate_seeds.curation import (
    add_labels,
    cluster_summary,
    cluster_table,
    curation_checks,
    kept_clusters,
    read_labels,
)

MIN_SCORE = 3
ANSWERS = {  # cluster -> (seeds in it, the model's answer)
    0: (4, '{"topic": "Cell biology", "educational_score": 5}'),
    1: (3, '{"topic": "Casino bonus offers", "educational_score": 1}'),
    2: (2, "Topic: Home cooking tips\nEducational score: 3/5"),  # exactly the threshold: kept
    3: (1, "I cannot tell what these pages share."),
}


def labels():
    answers = Dataset.from_dict(
        {
            CLUSTER_ID: list(ANSWERS),
            "size": [size for size, _ in ANSWERS.values()],
            "example": [f"the most central text of cluster {c}" for c in ANSWERS],
            "answer": [answer for _, answer in ANSWERS.values()],
            "finish_reason": ["stop"] * len(ANSWERS),
        }
    )
    return read_labels(answers)


def seeds():
    clusters = [c for c, (size, _) in ANSWERS.items() for _ in range(size)]
    return Dataset.from_dict(
        {"text": [f"seed {i} of cluster {c}" for i, c in enumerate(clusters)], CLUSTER_ID: clusters}
    )


def test_seeds_of_a_cluster_under_the_threshold_are_dropped_as_low_educational_value():
    found = labels()
    assert [(x.topic, x.score) for x in found.values()] == [
        ("Cell biology", 5),
        ("Casino bonus offers", 1),
        ("Home cooking tips", 3),
        (None, None),
    ]
    labelled = seeds().map(add_labels, batched=True, fn_kwargs={"labels": found})
    kept, rejected, counts = apply_checks(labelled, curation_checks(MIN_SCORE), desc="curation")

    assert counts == {"low_educational_value": 3, "label_unparseable": 1}
    low = rejected.filter(lambda r: r[REASON] == "low_educational_value")
    assert set(low[CLUSTER_ID]) == {1} and set(low["topic"]) == {"Casino bonus offers"}
    assert sorted(kept[CLUSTER_ID]) == [0, 0, 0, 0, 2, 2]
    assert set(zip(kept["topic"], kept["educational_score"])) == {("Cell biology", 5), ("Home cooking tips", 3)}

    assert kept_clusters(found, MIN_SCORE) == {0, 2}
    summary = {c["cluster"]: c["kept"] for c in cluster_summary(found, kept_clusters(found, MIN_SCORE))}
    assert summary == {0: True, 1: False, 2: True, 3: False}


def test_the_card_table_marks_the_low_cluster_dropped_and_the_others_kept():
    table = cluster_table(labels(), MIN_SCORE)
    rows = [line for line in table.splitlines() if re.match(r"\| \d+ \|", line)]
    assert [row.split(" | ")[:5] for row in rows] == [  # largest cluster first
        ["| 0", "Cell biology", "4", "5", "yes"],
        ["| 1", "Casino bonus offers", "3", "1", "no (low_educational_value)"],
        ["| 2", "Home cooking tips", "2", "3", "yes"],
        ["| 3", "unparseable answer: `I cannot tell what these pages share.`", "1", "-", "no (label_unparseable)"],
    ]
    assert table.endswith("2 of 4 clusters kept, holding 6 of 10 seeds.")
