"""TinyStories: short stories in the words of a three-year-old, made diverse by random words and features.

The method (TinyStories: How Small Can Language Models Be and Still Speak Coherent English?):
a vocabulary of about 1,500 simple words -> per prompt, one random noun, verb and adjective and a random set of
features (dialogue, bad ending, moral value, plot twist, foreshadowing, conflict) -> stories -> filters (a
required word missing, too many words outside the vocabulary, too short or truncated) -> dedup. With `instruct`,
TinyStories-Instruct: a second pass writes a one-or-two-line summary, a sentence is taken from the story, and
`text` holds the instructions followed by the story, in the published layout.

    python recipes/tinystories.py --config configs/tinystories/demo.yaml
    python recipes/tinystories.py --config configs/tinystories/demo.yaml --instruct false --num_samples 200
    accelerate launch recipes/tinystories.py --config configs/tinystories/default.yaml

There is no input dataset: `num_samples` prompts are drawn from the vocabulary (pass your own word lists with
`nouns_file`, `verbs_file`, `adjectives_file`, `other_words_file`).
"""

from dataclasses import dataclass

from datasets import Dataset

from builders.config import RecipeConfig, knob, parse_config
from builders.data import ROW_ID
from builders.errors import UserError, exit_on_user_error
from builders.filters.checks import generation_checks
from builders.methods.tinystories.prompts import (
    FEATURES,
    check_features,
    clean_stories,
    instruct_rows,
    story_rows,
    summary_rows,
)
from builders.methods.tinystories.vocabulary import load_vocabulary, story_checks
from builders.output.card import RecipeInfo
from builders.run import Run


@dataclass
class TinyStoriesConfig(RecipeConfig):
    """TinyStories: random simple words + features -> stories for small children (+ Instruct layout)."""

    num_samples: int | None = knob(1000, "stories to write (one prompt each)")
    nouns_file: str | None = knob(None, "nouns to draw from, one per line (None: the project's list)")
    verbs_file: str | None = knob(None, "verbs to draw from, in their base form (None: the project's list)")
    adjectives_file: str | None = knob(None, "adjectives to draw from (None: the project's list)")
    other_words_file: str | None = knob(None, "words stories may use besides those (None: the project's list)")
    features: list[str] = knob(list(FEATURES), "features a prompt may ask for")
    min_features: int = knob(0, "fewest features per prompt")
    max_features: int = knob(3, "most features per prompt")
    instruct: bool = knob(False, "TinyStories-Instruct: summary pass, a sentence from the story, and `text`")
    min_story_words: int = knob(80, "drop stories with fewer words")
    max_hard_word_share: float = knob(0.1, "drop stories with a larger share of words outside the vocabulary")
    require_words: bool = knob(True, "drop stories that miss one of their three words (or all its inflections)")
    drop_truncated: bool = knob(True, "drop stories and summaries that hit their token limit")
    summary_max_new_tokens: int = knob(96, "most tokens generated per summary", min=1)
    max_new_tokens: int = knob(640, "most tokens generated per story")
    temperature: float = knob(0.8, "sampling temperature")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_samples is None:
            raise UserError("tinystories needs num_samples: the number of stories to write")
        if self.dataset:
            raise UserError(
                "tinystories draws its prompts from word lists and reads no dataset; remove `dataset` "
                "(pass nouns_file, verbs_file, adjectives_file instead)"
            )
        check_features(self.features, self.min_features, self.max_features)


INFO = RecipeInfo(
    name="tinystories",
    title="TinyStories-style synthetic stories for small children",
    method="TinyStories (stories that use only words a 3-4 year old understands, each prompt forced to use a random "
    "noun, verb and adjective and a random set of story features)",
    summary="Short stories in very simple English, each written by a language model around three random words and "
    "a few story features, for training and studying small language models.",
    paper_title="TinyStories: How Small Can Language Models Be and Still Speak Coherent English?",
    paper_url="https://arxiv.org/abs/2305.07759",
    tags=["tinystories", "stories"],
    text_column="story",
    templates="`builders/prompts/tinystories/{story,summary}.jinja`; word lists `nouns.txt`, `verbs.txt`, "
    "`adjectives.txt`, `other_words.txt`, `irregular_forms.txt` in the same folder",
    columns={
        "story": "the story",
        "words": "the words the story had to use: [noun, verb, adjective]",
        "features": "the features the story had to have",
        "prompt": "the prompt given to the model",
        "summary": "a one-or-two-sentence summary of the story, from a second generation pass",
        "sentence": "a sentence taken from the story",
        "text": "TinyStories-Instruct layout: Features, Words, Random sentence, Summary, then Story",
    },
)
COLUMNS = ["story", "words", "features", "prompt", "summary", "sentence", "text"]


@exit_on_user_error
def main(argv=None):
    config = parse_config(TinyStoriesConfig, argv)
    vocabulary = load_vocabulary(config.nouns_file, config.verbs_file, config.adjectives_file, config.other_words_file)
    run = Run(config, INFO)

    rows = Dataset.from_dict({ROW_ID: list(range(config.num_samples))})
    run.record("input", len(rows), len(rows))
    prompts = rows.map(
        story_rows,
        batched=True,
        fn_kwargs=dict(
            vocabulary=vocabulary,
            features=config.features,
            seed=config.seed,
            min_features=config.min_features,
            max_features=config.max_features,
        ),
        desc="Drawing words and features",
    )
    stories = run.generate(prompts, prompt_column="prompt", output_column="story", stage="story")
    stories = stories.map(clean_stories, batched=True, desc="Cleaning stories")
    checks = story_checks(
        vocabulary,
        min_words=config.min_story_words,
        max_hard_share=config.max_hard_word_share,
        require_words=config.require_words,
        drop_truncated=config.drop_truncated,
    )
    stories = run.filter(stories, checks, stage="story_filter")
    stories = run.dedup(stories, column="story", stage="dedup")

    # TinyStories-Instruct: a summary from a second pass, then the published layout.
    if config.instruct and len(stories):
        stories = stories.map(summary_rows, batched=True, desc="Building summary prompts")
        sampling = run.sampling(max_new_tokens=config.summary_max_new_tokens)
        stories = run.generate(
            stories, prompt_column="summary_prompt", output_column="summary", stage="summary", sampling=sampling
        )
        stories = run.filter(
            stories, generation_checks("summary", drop_truncated=config.drop_truncated), stage="summary_filter"
        )
        stories = stories.map(instruct_rows, batched=True, fn_kwargs={"seed": config.seed}, desc="Instruct layout")

    vocab = f"{len(vocabulary)} simple words ({len(vocabulary.nouns)} nouns, {len(vocabulary.verbs)} verbs, "
    run.finish(stories, seed_data=vocab + f"{len(vocabulary.adjectives)} adjectives)", columns=COLUMNS)


if __name__ == "__main__":
    main()
