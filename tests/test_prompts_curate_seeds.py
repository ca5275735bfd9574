"""The cluster-labelling prompt and the parser of the model's answers (topic + educational score, 1 to 5)."""

import re

import pytest

from builders.errors import UserError
from builders.methods.curate_seeds.prompts import (
    DEFAULT_TEMPLATE,
    LABEL_PATTERN,
    ClusterLabel,
    check_template,
    clean_topic,
    label_prompt,
    parse_label,
)
from conftest import COSMOPEDIA_SEEDS, read_jsonl

# Answers as models write them: constrained JSON, fenced JSON with prose around it, JSON-ish with single quotes
# or unquoted keys, and the free-text layouts chat models fall back to.
PARSED = [
    ('{"topic": "cell biology", "educational_score": 5}', "cell biology", 5),
    ('{\n  "topic": "Home loan advice",\n  "educational_score": 3\n}', "Home loan advice", 3),
    (
        'Here is my answer:\n```json\n{"topic": "Football match reports", "educational_score": 2}\n```\n'
        "These extracts all describe games.",
        "Football match reports",
        2,
    ),
    ("{'topic': 'Python programming basics', 'educational_score': '4'}", "Python programming basics", 4),
    ('{topic: "Renaissance art history", educational_score: 4,}', "Renaissance art history", 4),
    ('{"Topic": "Healthy cooking recipes", "Educational Score": "3/5"}', "Healthy cooking recipes", 3),
    ('{"name": "Astronomy and space", "score": 4.5}', "Astronomy and space", 5),
    ('[{"topic": "Chemistry of everyday life", "educational_score": 4}]', "Chemistry of everyday life", 4),
    ("Topic: Machine learning techniques\nEducational score: 4", "Machine learning techniques", 4),
    ("**Topic:** Personal finance tips\n**Educational value:** 3 out of 5", "Personal finance tips", 3),
    ('1. "topic": "Climate change effects"\n2. "educational_score": 4', "Climate change effects", 4),
    ("Topic: Celebrity gossip - Educational score: 1/5.", "Celebrity gossip", 1),
    ('The topic is:\nTopic: "World War II history".\nScore: 5 (textbook material)', "World War II history", 5),
    ('{"topic": "Photosynthesis in plants", "educational_score": 4', "Photosynthesis in plants", 4),  # cut short
    # SmolLM2-135M-Instruct, free text at temperature 0.7, on the default template (2 of its 10 answers)
    (
        'Extracts 4, 5, and 6 from the provided extract group are:\n\n- 1: "cell biology"\n- 2: "football match '
        'reports"\n\nHere is the JSON data:\n\n```json\n{\n  "topic": "cell biology",\n  "educational_score": 3\n}\n```',
        "cell biology",
        3,
    ),
    ('{"topic": "grade 5 mathematics", "educational_score": 3}', "grade 5 mathematics", 3),  # its constrained answer
]

UNPARSEABLE = [
    "",
    "   \n",
    "I'm sorry, I cannot help with that request.",
    '{"topic": "Gardening", "educational_score": 8}',  # off the 1-5 scale
    "Topic: Gardening\nScore: 7/10",  # another scale
    '{"topic": "", "educational_score": 3}',
    '{"educational_score": 4}',
    "Topic: Gardening",  # no score
    '{"topic": "Gardening", "educational_score": true}',
    '{"topic": "topic", "educational_score": 1}',  # SmolLM2-135M, constrained: the key's name as the topic
    '{"topic": "<the subject>", "educational_score": 3}',
    "#^@! 7 ]]{ ;; zq",
    # SmolLM2-135M-Instruct, free text: no label, a label nested out of shape, and the instructions echoed back
    "The extract provided is a summary of a topic, and it is a short name for a subject.",
    'Here\'s a JSON object:\n\n```\n{\n    "topic": {\n        "topic_1": {\n            "educational_score": 3\n'
    "        }\n    }\n}\n```",
    'The extracts share the following subject:\n\n* "topic": a short name for that subject, 2 to 6 words, specific '
    'enough to tell it apart from other subjects\n* "educational_score": a whole number from 1 to 5 for how much',
]


@pytest.mark.parametrize("answer,topic,score", PARSED)
def test_realistic_answers_parse(answer, topic, score):
    assert parse_label(answer) == ClusterLabel(topic, score)


@pytest.mark.parametrize("answer", UNPARSEABLE)
def test_unusable_answers_give_none_not_an_exception(answer):
    assert parse_label(answer) is None


def test_the_structured_output_pattern_admits_exactly_the_scale_and_parses():
    good = '{"topic": "Roman history", "educational_score": 4}'
    assert re.fullmatch(LABEL_PATTERN, good) and parse_label(good) == ClusterLabel("Roman history", 4)
    for bad in (
        '{"topic": "Roman history", "educational_score": 6}',
        '{"topic": "Roman history", "educational_score": 0}',
        '{"topic": " ", "educational_score": 3}',
        '{"topic": "a\nb", "educational_score": 3}',
        '{ "topic": "Roman history", "educational_score": 3}',
        '{"topic": "one two three four five six seven eight nine", "educational_score": 3}',  # over 8 words
        '{"topic": "%s", "educational_score": 3}' % ("x" * 25),  # a word over 24 characters
        '{"topic": "Roman  history", "educational_score": 3}',
    ):
        assert not re.fullmatch(LABEL_PATTERN, bad), bad


def test_topics_are_cleaned_and_bounded():
    assert clean_topic('  "**Marine biology**."  ') == "Marine biology"
    assert clean_topic("Quantum computing\nThe extracts discuss qubits.") == "Quantum computing"
    assert clean_topic("word " * 11) is None  # a sentence, not a name
    long = clean_topic("extraordinarily " * 8)
    assert len(long) <= 80 and not long.endswith(" ")
    assert clean_topic("  123 !! ") is None
    assert clean_topic(None) is None


def test_prompt_shows_the_central_texts_cut_and_the_scale():
    seeds = [r["text"] for r in read_jsonl(COSMOPEDIA_SEEDS)[:3]]
    prompt = label_prompt(seeds, DEFAULT_TEMPLATE, max_chars=120)
    for i, seed in enumerate(seeds, start=1):
        assert f"<extract {i}>" in prompt
        assert " ".join(seed.split())[:100] in prompt
        assert " ".join(seed.split())[200:300] not in prompt
    assert "from 1 to 5" in prompt and '"educational_score"' in prompt


def test_a_users_template_file_is_rendered(tmp_path):
    path = tmp_path / "mine.jinja"
    path.write_text("Name the subject ({{ score_min }}-{{ score_max }}):{% for e in examples %} [{{ e }}]{% endfor %}")
    assert label_prompt(["alpha  beta", "gamma"], str(path)) == "Name the subject (1-5): [alpha beta] [gamma]"


def test_missing_or_broken_templates_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="neither a file nor a template"):
        check_template("no/such.jinja")
    broken = tmp_path / "broken.jinja"
    broken.write_text("{{ examples | length }} {{ extracts }}")
    with pytest.raises(UserError, match="does not render"):
        check_template(str(broken))
