"""Topic coverage: the original's texts are embedded and clustered (k-means); ours are assigned to the nearest
cluster. Reports the share of clusters we reach and the Jensen-Shannon divergence of the two distributions."""

import datasets
import evaluate
import numpy as np
from scipy.spatial.distance import jensenshannon


class TopicCoverage(evaluate.Comparison):
    def _info(self):
        return evaluate.ComparisonInfo(
            module_type="comparison",
            description="Embedding clusters of the original's texts that our texts reach",
            citation="",
            inputs_description="predictions: our texts; reference_texts: the original's texts (unaligned); model: a "
            "sentence-transformers model folder or id; num_clusters; seed",
            # the original's texts come as the `reference_texts` keyword: the two sets are not aligned and differ in size
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    def _compute(self, predictions, reference_texts, model, num_clusters=20, seed=0, batch_size=16):
        from sentence_transformers import SentenceTransformer
        from sklearn.cluster import KMeans

        embedder = SentenceTransformer(model)

        def embed(texts):
            return embedder.encode([t or "" for t in texts], batch_size=batch_size, normalize_embeddings=True)

        theirs, ours = embed(reference_texts), embed(predictions)
        k = max(1, min(num_clusters, len(theirs)))
        kmeans = KMeans(k, n_init=3, random_state=seed).fit(theirs)
        their_share = np.bincount(kmeans.labels_, minlength=k) / len(theirs)
        our_share = np.bincount(kmeans.predict(ours), minlength=k) / max(1, len(ours))
        return {
            "clusters": k,
            "clusters_reached": int((our_share > 0).sum()),
            "coverage": float((our_share > 0).mean()),
            "jensen_shannon": float(jensenshannon(our_share, their_share, base=2)),
            "reference_share": their_share.round(4).tolist(),
            "share": our_share.round(4).tolist(),
        }
