"""How much two sets of texts share their vocabulary (lower-cased words)."""

import datasets
import evaluate


class VocabularyOverlap(evaluate.Comparison):
    def _info(self):
        return evaluate.ComparisonInfo(
            module_type="comparison",
            description="Jaccard of two vocabularies, and the share of each reached by the other",
            citation="",
            inputs_description="predictions: our texts; reference_texts: the original's texts (unaligned)",
            # the original's texts come as the `reference_texts` keyword: the two sets are not aligned and differ in size
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    def _compute(self, predictions, reference_texts, min_count=1):
        ours, theirs = _vocabulary(predictions, min_count), _vocabulary(reference_texts, min_count)
        both = len(ours & theirs)
        return {
            "jaccard": both / len(ours | theirs) if ours | theirs else 1.0,
            "reference_vocabulary_reached": both / len(theirs) if theirs else 1.0,
            "vocabulary_in_reference": both / len(ours) if ours else 1.0,
            "vocabulary_size": len(ours),
            "reference_vocabulary_size": len(theirs),
        }


def _vocabulary(texts, min_count):
    counts = {}
    for text in texts:
        for word in (text or "").lower().split():
            counts[word] = counts.get(word, 0) + 1
    return {w for w, c in counts.items() if c >= min_count}
