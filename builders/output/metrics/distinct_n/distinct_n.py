"""Distinct-n (Li et al., 2016): unique word n-grams over all word n-grams of a set of texts."""

import datasets
import evaluate


class DistinctN(evaluate.Measurement):
    def _info(self):
        return evaluate.MeasurementInfo(
            module_type="measurement",
            description="distinct-1 and distinct-2 of a set of texts: how much of the text is new n-grams",
            citation="Li et al., A Diversity-Promoting Objective Function for Neural Conversation Models, 2016",
            inputs_description="data: the texts",
            features=datasets.Features({"data": datasets.Value("string")}),
        )

    def _compute(self, data, max_n=2):
        out = {}
        for n in range(1, max_n + 1):
            grams, total = set(), 0
            for text in data:
                words = (text or "").lower().split()
                for i in range(len(words) - n + 1):
                    grams.add(tuple(words[i : i + n]))
                    total += 1
            out[f"distinct_{n}"] = len(grams) / total if total else 0.0
        return out
