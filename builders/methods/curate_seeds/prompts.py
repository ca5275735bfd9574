"""Cluster labels for seed curation: the prompt that shows a cluster's central texts, and the answer parser.

The model answers with a topic name and an educational-value score on a fixed scale of 1 to 5
(`SCORE_MIN`..`SCORE_MAX`). Where the backend supports structured output the answer is constrained to
`LABEL_PATTERN` (JSON of a fixed shape); otherwise (or when a model strays) `parse_label` reads JSON, JSON-like text, or
"Topic: ... / Score: 4/5" lines. An answer that yields no topic or no score in range parses to None: the
recipe drops that cluster's seeds with a reason, never crashes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import jinja2

from builders.errors import UserError
from builders.prompts import TEMPLATES, render

SCORE_MIN, SCORE_MAX = 1, 5
DEFAULT_TEMPLATE = "curate_seeds/label_cluster.jinja"
MAX_TOPIC_CHARS = 80
MAX_TOPIC_WORDS = 10  # a longer "topic" is a sentence (often the instructions echoed back), not a name

# The answer's exact shape, for backends with structured output: a topic of 1 to 8 words of at most 24 characters,
# then a score on the scale. A regex rather than a JSON schema: the topic needs a bound (without one a weak model
# may never close the string), and a bounded length, `maxLength` in a schema or `[^"]{1,79}` in a regex, takes
# xgrammar about 3 s per request to compile for SmolLM2's vocabulary (vLLM abandons a regex after 5 s on a busy
# CPU); bounded in words it takes about 0.3 s.
_WORD = r'[^"\\\x00-\x20]{1,24}'
LABEL_PATTERN = rf'\{{"topic": "{_WORD}( {_WORD}){{0,7}}", "educational_score": [{SCORE_MIN}-{SCORE_MAX}]\}}'
_PLACEHOLDERS = {"topic", "the topic", "subject", "the subject", "name", "title", "label", "unknown", "none", "n/a"}


@dataclass(frozen=True)
class ClusterLabel:
    topic: str
    educational_score: int


# --- the prompt -----------------------------------------------------------------------------------------------


def check_template(template: str) -> None:
    """Fail before any work when the labelling template is missing or does not render."""
    try:
        label_prompt(["an example text"], template)
    except UserError:
        raise
    except jinja2.TemplateError as err:
        raise UserError(
            f"label_template '{template}' does not render ({type(err).__name__}: {err}); it receives "
            "`examples` (a list of texts), `score_min` and `score_max`"
        ) from None


def label_prompt(examples: list[str], template: str = DEFAULT_TEMPLATE, max_chars: int = 500) -> str:
    """The labelling prompt for one cluster: its central texts, each cut to `max_chars` characters."""
    cut = [_cut(" ".join(text.split()), max_chars) for text in examples]
    path = Path(template)
    if path.is_file():  # a user's own template file
        return render(
            path.name, folder=str(path.resolve().parent), examples=cut, score_min=SCORE_MIN, score_max=SCORE_MAX
        )
    if (TEMPLATES / template).is_file():
        return render(template, examples=cut, score_min=SCORE_MIN, score_max=SCORE_MAX)
    raise UserError(
        f"label_template '{template}' is neither a file nor a template under builders/prompts; "
        f"give a .jinja file or leave the default {DEFAULT_TEMPLATE}"
    )


def _cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return text[:max_chars].rsplit(" ", 1)[0] + " ..."


# --- the answer -------------------------------------------------------------------------------------------------

_TOPIC_KEYS = ("topic", "topic_name", "name", "title", "label", "subject", "category")
_SCORE_KEYS = ("educational_score", "educational_value", "education_score", "score", "value", "rating")
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_TOPIC_LINE = re.compile(
    r"^[\W\d_]*(?:topic(?:[ _]name)?|subject|name|title|label|category)\b[\W_]*?[:=\-–]\s*(.+)$", re.I | re.M
)
_SCORE = re.compile(
    r"(?:educational[ _-]*(?:value|score)?|score|rating|value)\b[^\d\n]{0,40}?"
    r"(\d+(?:\.\d+)?)\s*(?:(?:/|out\s+of)\s*(\d+))?",
    re.I,
)
_CUT_TOPIC_AT = re.compile(r"\s*(?:[,;|(\[]|\s[-–—]\s|\.\s)\s*(?:\**\s*)(?:educational|score|rating|value)\b.*$", re.I)


def parse_label(text: str | None) -> ClusterLabel | None:
    """The topic and score in a model's answer, or None when either is missing or the score is off the scale."""
    if not text or not text.strip():
        return None
    found = _from_json(text)
    topic, score = found if found else (None, None)
    if topic is None:
        match = _TOPIC_LINE.search(text)
        topic = match.group(1) if match else None
    if score is None:
        match = _SCORE.search(text)
        score = _score(match.group(1), match.group(2)) if match else None
    topic = clean_topic(topic)
    if not topic or score is None:
        return None
    return ClusterLabel(topic, score)


def _from_json(text: str) -> tuple[str | None, int | None] | None:
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    start, end = body.find("{"), body.rfind("}")
    if start < 0:
        return None
    candidate = body[start : end + 1] if end > start else body[start:] + "}"  # an answer cut off before "}"
    for attempt in (candidate, _loosen(candidate)):
        try:
            data = json.loads(attempt)
        except (json.JSONDecodeError, ValueError):
            continue
        if isinstance(data, list) and data and isinstance(data[0], dict):
            data = data[0]
        if not isinstance(data, dict):
            return None
        keys = {str(k).strip().lower().replace(" ", "_"): v for k, v in data.items()}
        topic = next((keys[k] for k in _TOPIC_KEYS if isinstance(keys.get(k), str)), None)
        raw = next((keys[k] for k in _SCORE_KEYS if k in keys), None)
        return topic, _score(raw)
    return None


def _loosen(candidate: str) -> str:
    """JSON as small models write it: single quotes, trailing commas, unquoted keys."""
    text = re.sub(r"(?<![A-Za-z])'([^']*)'", r'"\1"', candidate)
    text = re.sub(r",\s*([}\]])", r"\1", text)
    return re.sub(r"([{,]\s*)([A-Za-z_][\w ]*?)\s*:", r'\1"\2":', text)


def _score(raw, denominator=None) -> int | None:
    """A score on the 1-5 scale from 4, 4.0, "4", "4/5" or "4 out of 5"; None when it is off the scale."""
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, str):
        match = re.match(r"\s*(\d+(?:\.\d+)?)\s*(?:(?:/|out\s+of)\s*(\d+))?", raw, re.I)
        if not match:
            return None
        raw, denominator = match.group(1), match.group(2) or denominator
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    if denominator is not None and int(denominator) != SCORE_MAX:
        return None  # "7/10" is on another scale: not ours to guess
    score = int(value + 0.5)  # 3.5 -> 4
    return score if SCORE_MIN <= score <= SCORE_MAX else None


def clean_topic(topic) -> str | None:
    """A topic name without Markdown, quotes, a trailing score or full stop; None when no name is left."""
    if not isinstance(topic, str):
        return None
    text = topic.strip().splitlines()[0] if topic.strip() else ""
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = _CUT_TOPIC_AT.sub("", text)
    text = re.sub(r"[*_`#]+", "", text)
    text = " ".join(text.split()).strip(" \"'“”‘’.:;,-")
    if len(text.split()) > MAX_TOPIC_WORDS or text.lower().strip("<>") in _PLACEHOLDERS:
        return None
    if len(text) > MAX_TOPIC_CHARS:
        text = text[:MAX_TOPIC_CHARS].rsplit(" ", 1)[0]
    return text if any(ch.isalpha() for ch in text) else None
