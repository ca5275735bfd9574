"""Cluster texts by meaning: embed a sample, fit clusters on it, assign every row to its nearest centroid.

Cosmopedia clustered 100k web samples and then gave 15M more their cluster's topic. The same shape here:

    sample = fit_sample(len(ds), fit_sample_size, seed)       # sorted row positions, drawn from the seed
    clusters = fit_clusters(embed(texts[sample]), "kmeans", num_clusters, seed)
    ds = assign_clusters(ds, "text", clusters, model)           # + cluster_id, _centroid_distance
    central = central_rows(ds, clusters.num_clusters, 8)        # each cluster's rows closest to its centroid

Only the sample's vectors are held in memory (100k x 384 float32 = 150 MB); the other rows are embedded
and assigned block by block inside one `Dataset.map`, so 1M seeds need no more memory than 100k. k-means
runs on the sample with scikit-learn (`MiniBatchKMeans` above `MINIBATCH_ABOVE` rows), HDBSCAN (when asked)
on a 50-dimensional PCA of it; either way every row, in the sample or not, goes to its nearest centroid
(Euclidean distance between unit vectors), so one rule labels every row.
"""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass, field

import numpy as np
from datasets import Dataset

from builders.dedup.embeddings import embed, load_embedder
from builders.errors import UserError

CLUSTER_ID = "cluster_id"
DISTANCE = "_centroid_distance"  # private: dropped from the output, used to find each cluster's central rows
MINIBATCH_ABOVE = 20_000  # k-means on more sample rows than this uses MiniBatchKMeans
ASSIGN_BLOCK = 8_192  # rows embedded and assigned per map batch
EMBED_MAX_CHARS = 2_000  # all-MiniLM-L6-v2 reads 256 word pieces (~1,000 characters): skip tokenising the rest
HDBSCAN_DIMENSIONS = 50


@dataclass
class Clusters:
    """The fitted clusters, and the sample they were fitted on."""

    method: str
    centroids: np.ndarray  # (clusters, dim) float32
    sample: np.ndarray  # sorted row positions of the fit sample
    sample_vectors: np.ndarray  # (sample, dim) float32, unit length
    sample_labels: np.ndarray  # nearest centroid of each sample row
    sample_distances: np.ndarray
    details: dict = field(default_factory=dict)  # for the funnel: sizes, timings, noise share

    @property
    def num_clusters(self) -> int:
        return len(self.centroids)


def fit_sample(num_rows: int, size: int, seed: int) -> np.ndarray:
    """Sorted positions of `size` rows drawn from `seed` (every row when there are no more than `size`)."""
    if num_rows <= size:
        return np.arange(num_rows)
    return np.sort(np.random.default_rng(seed).choice(num_rows, size=size, replace=False))


def clip(texts: list[str], max_chars: int = EMBED_MAX_CHARS) -> list[str]:
    return [(t or "")[:max_chars] for t in texts]


def fit_clusters(
    vectors: np.ndarray,
    method: str,
    num_clusters: int,
    seed: int,
    min_cluster_size: int = 25,
) -> np.ndarray:
    """Centroids fitted on `vectors`: k-means with `num_clusters`, or HDBSCAN (which picks the count itself)."""
    if method == "kmeans":
        if num_clusters > len(vectors):
            raise UserError(
                f"num_clusters ({num_clusters}) is larger than the {len(vectors)} rows to cluster; "
                "lower num_clusters or give more rows"
            )
        from sklearn.cluster import KMeans, MiniBatchKMeans

        if len(vectors) > MINIBATCH_ABOVE:
            model = MiniBatchKMeans(num_clusters, batch_size=4096, n_init=3, random_state=seed)
        else:
            model = KMeans(num_clusters, n_init=3, random_state=seed)
        return model.fit(vectors).cluster_centers_.astype(np.float32)
    if method == "hdbscan":
        from sklearn.cluster import HDBSCAN
        from sklearn.decomposition import PCA

        dims = min(HDBSCAN_DIMENSIONS, vectors.shape[1], len(vectors))
        reduced = PCA(dims, random_state=seed).fit_transform(vectors)
        labels = HDBSCAN(min_cluster_size=min_cluster_size, copy=True).fit_predict(reduced)
        found = sorted(set(labels.tolist()) - {-1})
        if not found:
            raise UserError(
                f"hdbscan found no cluster among {len(vectors)} rows with min_cluster_size {min_cluster_size}; "
                "lower min_cluster_size, give more rows, or use cluster_method: kmeans"
            )
        return np.stack([vectors[labels == c].mean(axis=0) for c in found]).astype(np.float32)
    raise UserError(f"cluster_method must be kmeans or hdbscan, got {method!r}")


def nearest(vectors: np.ndarray, centroids: np.ndarray, block: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid (Euclidean) of each vector and the distance to it, computed in blocks of rows."""
    labels = np.empty(len(vectors), dtype=np.int64)
    distances = np.empty(len(vectors), dtype=np.float32)
    squared_norms = (centroids**2).sum(axis=1)
    for start in range(0, len(vectors), block):
        part = vectors[start : start + block]
        squared = (part**2).sum(axis=1, keepdims=True) - 2 * part @ centroids.T + squared_norms
        labels[start : start + block] = squared.argmin(axis=1)
        distances[start : start + block] = np.sqrt(np.maximum(squared.min(axis=1), 0))
    return labels, distances


def cluster_sample(
    texts: list[str],
    sample: np.ndarray,
    *,
    method: str,
    num_clusters: int,
    seed: int,
    model: str,
    batch_size: int | None = None,
    min_cluster_size: int = 25,
    num_threads: int | None = None,
) -> Clusters:
    """Embed the sample's `texts` (one per position in `sample`; torch on `num_threads`), fit the clusters,
    place the sample rows."""
    load_embedder(model)  # loaded before the clock starts: the timings are of the work
    began = time.perf_counter()
    vectors = embed(clip(texts), model, batch_size=batch_size, progress=True, num_threads=num_threads)
    embedded = time.perf_counter()
    centroids = fit_clusters(vectors, method, num_clusters, seed, min_cluster_size)
    labels, distances = nearest(vectors, centroids)
    fitted = time.perf_counter()
    details = {
        "method": method,
        "clusters": len(centroids),
        "fit_sample_rows": len(sample),
        "embed_sample_s": round(embedded - began, 2),
        "fit_s": round(fitted - embedded, 2),
    }
    return Clusters(method, centroids, np.asarray(sample), vectors, labels, distances, details)


def assign_clusters(
    ds: Dataset,
    text_column: str,
    clusters: Clusters,
    model: str,
    batch_size: int | None = None,
    num_threads: int | None = None,
) -> tuple[Dataset, float]:
    """Add `cluster_id` and `_centroid_distance` to every row; returns the rows and the seconds it took.

    Rows of the fit sample keep the placement already computed; the others are embedded a block at a time.
    """
    sample = clusters.sample
    began = time.perf_counter()

    def assign(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        positions = np.asarray(indices)
        where = np.minimum(np.searchsorted(sample, positions), len(sample) - 1)
        in_sample = sample[where] == positions
        labels = clusters.sample_labels[where].copy()
        distances = clusters.sample_distances[where].copy()
        rest = np.flatnonzero(~in_sample)
        if len(rest):
            texts = clip([batch[text_column][i] for i in rest])
            vectors = embed(texts, model, batch_size=batch_size, num_threads=num_threads)
            labels[rest], distances[rest] = nearest(vectors, clusters.centroids)
        return {CLUSTER_ID: labels.tolist(), DISTANCE: distances.tolist()}

    # the map's cache is keyed by what decides the result: the rows, the centroids, the sample and the model
    key = hashlib.sha256(clusters.centroids.tobytes() + sample.tobytes() + model.encode()).hexdigest()[:16]
    out = ds.map(
        assign,
        batched=True,
        batch_size=ASSIGN_BLOCK,
        with_indices=True,
        new_fingerprint=f"{ds._fingerprint}-clusters-{key}",
        desc="Assigning rows to clusters",
    )
    return out, time.perf_counter() - began


def central_rows(ds: Dataset, num_clusters: int, k: int) -> dict[int, list[int]]:
    """Per cluster, the positions of its (at most) `k` rows closest to the centroid, closest first.

    Read from the `cluster_id` and `_centroid_distance` columns of `assign_clusters`, so every row counts, in the
    fit sample or not: a mini-batch k-means or HDBSCAN centroid may be no sample row's nearest and still gather rows.
    """
    columns = ds.select_columns([CLUSTER_ID, DISTANCE]).with_format("numpy")[:]
    labels, distances = columns[CLUSTER_ID], columns[DISTANCE]
    order = np.lexsort((distances, labels))  # stable: equal distances keep row order
    starts = np.searchsorted(labels[order], np.arange(num_clusters + 1))
    return {c: order[starts[c] : min(starts[c + 1], starts[c] + k)].tolist() for c in range(num_clusters)}


def cluster_picture(
    clusters: Clusters, names: dict[int, str], kept: set[int], seed: int, max_points: int = 5_000
) -> bytes:
    """A PNG of the sample in 2-D (PCA of the embeddings): kept clusters in colour, dropped ones in grey."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from sklearn.decomposition import PCA

    rows = fit_sample(len(clusters.sample_vectors), max_points, seed)
    vectors, labels = clusters.sample_vectors[rows], clusters.sample_labels[rows]
    pca = PCA(2, random_state=seed).fit(vectors)
    points, centres = pca.transform(vectors), pca.transform(clusters.centroids)

    fig = Figure(figsize=(10, 7.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    palette, markers = colormaps["tab10"], "os^Dv<>ph*"  # 100 distinct (colour, marker) pairs
    size = float(np.clip(4_000 / len(points), 4, 30))
    for cluster in range(clusters.num_clusters):
        mine = labels == cluster
        if cluster in kept:
            colour, marker = palette(cluster % 10), markers[(cluster // 10) % 10]
        else:
            colour, marker = (0.72, 0.72, 0.72), "o"
        ax.scatter(points[mine, 0], points[mine, 1], s=size, color=colour, marker=marker, alpha=0.7, linewidths=0)
    ax.scatter(centres[:, 0], centres[:, 1], s=25, color="black", marker="x", linewidths=1)
    for cluster, (x, y) in enumerate(centres):
        name = names.get(cluster) or "?"
        ax.annotate(
            f"{cluster}: {name[:28]}",
            (x, y),
            xytext=(4, 4),
            textcoords="offset points",
            fontsize=7,
            style="normal" if cluster in kept else "italic",
            color="black" if cluster in kept else "0.45",
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.6, "linewidth": 0},
        )
    ax.set_title(
        f"{clusters.num_clusters} clusters, {len(points)} seeds of the fit sample "
        "(PCA of the embeddings; grey: dropped; x: centroid)"
    )
    ax.set_xticks([])
    ax.set_yticks([])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()
