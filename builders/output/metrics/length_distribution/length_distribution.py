"""How far apart two length distributions are: Kolmogorov-Smirnov and Wasserstein (earth mover's) distance."""

import datasets
import evaluate
import numpy as np
from scipy import stats


class LengthDistribution(evaluate.Comparison):
    def _info(self):
        return evaluate.ComparisonInfo(
            module_type="comparison",
            description="Distance between the word-length distributions of two sets of texts (unaligned).",
            citation="",
            inputs_description="predictions: our texts; reference_texts: the original's texts (any number of each)",
            # the original's texts come as the `reference_texts` keyword: the two sets are not aligned and differ in size
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    def _compute(self, predictions, reference_texts):
        ours = np.array([len(t.split()) for t in predictions if t is not None], dtype=np.float64)
        theirs = np.array([len(t.split()) for t in reference_texts if t is not None], dtype=np.float64)
        ks = stats.ks_2samp(ours, theirs)
        return {
            "ks_statistic": float(ks.statistic),
            "ks_pvalue": float(ks.pvalue),
            "wasserstein_words": float(stats.wasserstein_distance(ours, theirs)),
            "mean_words": float(ours.mean()),
            "reference_mean_words": float(theirs.mean()),
            "median_words": float(np.median(ours)),
            "reference_median_words": float(np.median(theirs)),
        }
