"""Clustering of seed texts (builders.methods.curate_seeds.clustering) on real texts embedded with the embedded all-MiniLM-L6-v2."""

import io
import json

import numpy as np
import pytest
from datasets import Dataset

from builders.errors import UserError
from builders.methods.curate_seeds import clustering
from builders.methods.curate_seeds.clustering import (
    Clusters,
    assign_clusters,
    central_rows,
    cluster_picture,
    cluster_sample,
    fit_clusters,
    fit_sample,
    nearest,
)
from conftest import shipped_data

PER_KIND = 20
MODEL = "all-minilm-l6-v2"


@pytest.fixture(scope="module")
def kinds():
    """Three kinds of real text: Shakespeare speeches, Alpaca answers that are code, and Alpaca recipes."""
    speeches = [p for p in shipped_data("tinyshakespeare.txt").read_text().split("\n\n") if len(p) > 300]
    alpaca = json.loads(shipped_data("alpaca_5000.json").read_text())
    code = [r["output"] for r in alpaca if "def " in r["output"] and "return" in r["output"]]
    recipes = [r["output"] for r in alpaca if "recipe" in r["instruction"].lower() and len(r["output"]) > 200]
    texts = speeches[:PER_KIND] + code[:PER_KIND] + recipes[:PER_KIND]
    truth = np.repeat(np.arange(3), PER_KIND)
    fitted = cluster_sample(texts, np.arange(len(texts)), method="kmeans", num_clusters=3, seed=0, model=MODEL)
    return texts, truth, fitted


def purity(labels, truth):
    return sum(np.bincount(truth[labels == c]).max() for c in set(labels.tolist())) / len(labels)


def test_fit_sample_is_deterministic_per_seed():
    a, b, c = fit_sample(1000, 100, seed=1), fit_sample(1000, 100, seed=1), fit_sample(1000, 100, seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert len(a) == len(set(a.tolist())) == 100 and np.all(np.diff(a) > 0)
    assert np.array_equal(fit_sample(50, 100, seed=1), np.arange(50))  # small inputs: every row


def test_kmeans_separates_kinds_of_text_and_repeats_itself(kinds):
    texts, truth, fitted = kinds
    vectors = fitted.sample_vectors
    centroids = fit_clusters(vectors, "kmeans", 3, seed=0)
    labels, _ = nearest(vectors, centroids)
    assert purity(labels, truth) >= 0.9
    assert np.array_equal(centroids, fit_clusters(vectors, "kmeans", 3, seed=0))


def test_minibatch_kmeans_on_large_samples_is_deterministic(monkeypatch, kinds):
    monkeypatch.setattr(clustering, "MINIBATCH_ABOVE", 10)
    _, truth, fitted = kinds
    vectors = fitted.sample_vectors
    first = fit_clusters(vectors, "kmeans", 3, seed=5)
    assert np.array_equal(first, fit_clusters(vectors, "kmeans", 3, seed=5))
    assert purity(nearest(vectors, first)[0], truth) >= 0.8


def test_hdbscan_finds_the_groups_itself(kinds):
    _, truth, fitted = kinds
    vectors = fitted.sample_vectors
    centroids = fit_clusters(vectors, "hdbscan", num_clusters=99, seed=0, min_cluster_size=5)
    labels, _ = nearest(vectors, centroids)
    assert len(centroids) >= 2
    assert purity(labels, truth) >= 0.8
    assert np.array_equal(centroids, fit_clusters(vectors, "hdbscan", 99, seed=0, min_cluster_size=5))


def test_too_many_clusters_or_none_found_are_user_errors(kinds):
    vectors = kinds[2].sample_vectors
    with pytest.raises(UserError, match="num_clusters \\(61\\) is larger than the 60 rows"):
        fit_clusters(vectors, "kmeans", 61, seed=0)
    with pytest.raises(UserError, match="hdbscan found no cluster"):
        fit_clusters(vectors, "hdbscan", 3, seed=0, min_cluster_size=59)


def test_nearest_in_blocks_matches_brute_force():
    rng = np.random.default_rng(0)
    vectors, centroids = rng.normal(size=(50, 8)).astype(np.float32), rng.normal(size=(6, 8)).astype(np.float32)
    labels, distances = nearest(vectors, centroids, block=7)
    full = np.linalg.norm(vectors[:, None, :] - centroids[None, :, :], axis=2)
    assert np.array_equal(labels, full.argmin(axis=1))
    assert np.allclose(distances, full.min(axis=1), atol=1e-5)


def test_rows_outside_the_sample_join_their_nearest_centroid(monkeypatch, kinds):
    texts, truth, fitted = kinds
    vectors = fitted.sample_vectors
    monkeypatch.setattr(clustering, "ASSIGN_BLOCK", 16)  # several map batches, each mixing sample and other rows
    sample = fit_sample(len(texts), 24, seed=3)
    clusters = cluster_sample([texts[i] for i in sample], sample, method="kmeans", num_clusters=3, seed=3, model=MODEL)
    ds, _ = assign_clusters(Dataset.from_dict({"text": texts}), "text", clusters, MODEL)
    expected, distances = nearest(vectors, clusters.centroids)
    assert ds["cluster_id"] == expected.tolist()
    assert np.allclose(ds["_centroid_distance"], distances, atol=1e-4)
    assert purity(np.asarray(ds["cluster_id"]), truth) >= 0.9  # fitted on 24 rows, right for all 60


def test_central_rows_are_the_closest_members_of_all_rows(kinds):
    texts, _, fitted = kinds
    sample = fit_sample(len(texts), 30, seed=1)
    clusters = cluster_sample([texts[i] for i in sample], sample, method="kmeans", num_clusters=3, seed=1, model=MODEL)
    ds, _ = assign_clusters(Dataset.from_dict({"text": texts}), "text", clusters, MODEL)
    labels, distances = np.asarray(ds["cluster_id"]), np.asarray(ds["_centroid_distance"])
    central = central_rows(ds, 3, 4)
    assert sorted(central) == [0, 1, 2]
    for cluster, rows in central.items():
        members = np.flatnonzero(labels == cluster)
        assert len(rows) == min(4, len(members)) and set(rows) <= set(members.tolist())
        assert np.all(np.diff(distances[rows]) >= 0)
        assert np.allclose(distances[rows], np.sort(distances[members])[: len(rows)])
    assert any(r not in set(sample.tolist()) for rows in central.values() for r in rows)  # not only sample rows


def test_a_cluster_without_sample_rows_still_gets_central_rows(kinds):
    """A centroid no sample row is nearest to (possible with mini-batch k-means and HDBSCAN) but other rows are."""
    texts, truth, fitted = kinds
    centroids = np.stack([fitted.sample_vectors[truth == kind].mean(axis=0) for kind in range(3)])
    sample = np.arange(2 * PER_KIND)  # speeches and code only
    labels, distances = nearest(fitted.sample_vectors[sample], centroids)
    assert 2 not in labels.tolist()
    clusters = Clusters("kmeans", centroids, sample, fitted.sample_vectors[sample], labels, distances)
    ds, _ = assign_clusters(Dataset.from_dict({"text": texts}), "text", clusters, MODEL)
    recipes = central_rows(ds, 3, 4)[2]
    assert len(recipes) == 4 and all(truth[r] == 2 for r in recipes)


def test_cluster_picture_is_a_png(kinds):
    png = cluster_picture(kinds[2], {0: "speeches", 1: "code", 2: None}, kept={0, 1}, seed=0)
    from matplotlib.image import imread

    image = imread(io.BytesIO(png), format="png")
    assert image.shape[0] > 300 and image.shape[1] > 300
