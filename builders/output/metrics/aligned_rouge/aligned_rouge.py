"""ROUGE-L between aligned rows (the same prompt or seed), with Google's rouge_score, as the Hub's `rouge` does."""

import datasets
import evaluate
import numpy as np
from rouge_score import rouge_scorer


class AlignedRouge(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="ROUGE-L F-measure of each aligned (ours, original) pair, its mean and median",
            citation="Lin, ROUGE: A Package for Automatic Evaluation of Summaries, 2004",
            inputs_description="predictions[i] and references[i]: our text and the original's for the same key",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references, use_stemmer=True):
        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=use_stemmer)
        scores = [scorer.score(r or "", p or "")["rougeL"].fmeasure for p, r in zip(predictions, references)]
        return {
            "rougeL_mean": float(np.mean(scores)) if scores else float("nan"),
            "rougeL_median": float(np.median(scores)) if scores else float("nan"),
            "rougeL": scores,
        }
