"""TinyStories prompts: three random simple words and a random set of story features per prompt.

Diversity comes from the draw: every prompt names one noun, one verb and one adjective from a vocabulary of about
1,500 words a small child knows, and asks for a random subset of features (dialogue, a bad ending, a moral, a
twist, foreshadowing, conflict). Every draw derives from (seed, row id), so reruns build the same prompts.

TinyStories-Instruct puts a story after its instructions, in the layout of the published data:

    Features: Dialogue, Twist
    Words: ball, throw, red
    Random sentence: Tom threw the red ball over the fence.
    Summary: Tom and Sue lose their ball and find it in the neighbour's garden.
    Story:
    Tom had a red ball. ...
"""

from __future__ import annotations

import random
import re

from builders.data import ROW_ID
from builders.errors import UserError
from builders.generation.stage import row_seed
from builders.methods.tinystories.vocabulary import Vocabulary, story_tokens
from builders.prompts import render

# Name -> (the name in the published Instruct layout, what the prompt asks for).
FEATURES: dict[str, tuple[str, str]] = {
    "dialogue": ("Dialogue", "at least one moment where the characters talk, with their words in quotation marks"),
    "bad_ending": ("BadEnding", "a sad ending: things do not work out for the characters"),
    "moral_value": ("MoralValue", "a lesson about right and wrong that the story teaches"),
    "plot_twist": ("Twist", "a surprise: something happens that the reader does not expect"),
    "foreshadowing": ("Foreshadowing", "an early hint of something that happens later in the story"),
    "conflict": ("Conflict", "a problem or a quarrel that the characters have to face"),
}
SENTENCE_END = re.compile(r"(?<=[.!?])[\"”']?\s+")


def check_features(features: list[str], min_features: int, max_features: int) -> None:
    for name in features:
        if name not in FEATURES:
            raise UserError(f"config key 'features' has unknown feature '{name}'; choose from {', '.join(FEATURES)}")
    if not 0 <= min_features <= max_features:
        raise UserError(f"need 0 <= min_features <= max_features, got {min_features} and {max_features}")
    if min_features > len(features):
        raise UserError(f"min_features is {min_features} but `features` lists only {len(features)}; lower one of them")


def draw_words(vocabulary: Vocabulary, seed: int, row_id: int) -> list[str]:
    """[noun, verb, adjective] for one row."""
    rng = random.Random(row_seed(seed, row_id, "tinystories-words"))
    return [rng.choice(vocabulary.nouns), rng.choice(vocabulary.verbs), rng.choice(vocabulary.adjectives)]


def draw_features(features: list[str], seed: int, row_id: int, min_k: int, max_k: int) -> list[str]:
    """A random subset of `features` (between min_k and max_k of them), in the order of `FEATURES`."""
    rng = random.Random(row_seed(seed, row_id, "tinystories-features"))
    k = rng.randint(min_k, min(max_k, len(features)))
    chosen = set(rng.sample(features, k))
    return [name for name in FEATURES if name in chosen]


def story_prompt(words: list[str], features: list[str]) -> str:
    noun, verb, adjective = words
    asks = [FEATURES[name][1] for name in features]
    return render("tinystories/story.jinja", noun=noun, verb=verb, adjective=adjective, features=asks)


def summary_prompt(story: str) -> str:
    return render("tinystories/summary.jinja", story=story.strip())


def clean_story(text: str) -> str:
    """The story without surrounding blank space and without a title line the model added anyway."""
    lines = (text or "").strip().splitlines()
    if len(lines) > 1 and _is_title(lines[0]):
        lines = lines[1:]
    return "\n".join(lines).strip()


def _is_title(line: str) -> bool:
    line = line.strip()
    return line.lower().startswith("title:") or line.startswith("#") or (line.startswith("**") and line.endswith("**"))


def clean_summary(text: str, max_sentences: int = 2) -> str:
    """One line with at most `max_sentences` sentences, without a 'Summary:' label."""
    text = " ".join((text or "").split())
    text = re.sub(r"^(?:\*\*)?summary(?:\*\*)?\s*:\s*(?:\*\*)?\s*", "", text, flags=re.I)
    return " ".join(SENTENCE_END.split(text)[:max_sentences]).strip()


def sentences(story: str) -> list[str]:
    return [s.strip() for line in story.splitlines() for s in SENTENCE_END.split(line) if s.strip()]


def choose_sentence(story: str, seed: int, row_id: int, min_words: int = 4) -> str:
    """A sentence of the story with at least `min_words` words ("" if there is none), drawn from (seed, row id)."""
    candidates = [s for s in sentences(story) if len(story_tokens(s)) >= min_words]
    if not candidates:
        return ""
    return random.Random(row_seed(seed, row_id, "tinystories-sentence")).choice(candidates)


def instruct_text(features: list[str], words: list[str], sentence: str, summary: str, story: str) -> str:
    """The published TinyStories-Instruct layout; lines with nothing to say (no features) are left out."""
    lines = []
    if features:
        lines.append("Features: " + ", ".join(FEATURES[name][0] for name in features))
    lines.append("Words: " + ", ".join(words))
    if sentence:
        lines.append("Random sentence: " + sentence)
    lines.append("Summary: " + summary)
    lines.append("Story:\n" + story)
    return "\n".join(lines)


# --- batched map functions of the recipe -------------------------------------------------------------------------


def story_rows(batch, *, vocabulary, features, seed, min_features, max_features):
    """A prompt per row id, with the words and features it asks for."""
    words = [draw_words(vocabulary, seed, r) for r in batch[ROW_ID]]
    chosen = [draw_features(features, seed, r, min_features, max_features) for r in batch[ROW_ID]]
    return {"words": words, "features": chosen, "prompt": [story_prompt(w, f) for w, f in zip(words, chosen)]}


def summary_rows(batch):
    return {"summary_prompt": [summary_prompt(s) for s in batch["story"]]}


def instruct_rows(batch, *, seed):
    """The sentence taken from the story, the cleaned summary, and the Instruct `text`."""
    out = {"summary": [], "sentence": [], "text": []}
    for row_id, story, summary, words, features in zip(
        batch[ROW_ID], batch["story"], batch["summary"], batch["words"], batch["features"]
    ):
        summary = clean_summary(summary)
        sentence = choose_sentence(story, seed, row_id)
        out["summary"].append(summary)
        out["sentence"].append(sentence)
        out["text"].append(instruct_text(features, words, sentence, summary, story))
    return out


def clean_stories(batch):
    return {"story": [clean_story(s) for s in batch["story"]]}
