"""Magpie: an aligned model writes the user's turn itself when given only the template's text before it.

The pre-query prefix is derived from the model's own chat template, not from a table of known formats:
render a conversation whose (last) user message is a sentinel string, and cut before the sentinel.
What the template writes right after the sentinel is its end-of-turn marker (`<|im_end|>`,
`<|eot_id|>`, ...), where the raw completion of the query must stop. A template that inserts a default
system prompt when none is given (SmolLM2, Qwen2.5) keeps it in the prefix: that is the context the model
was aligned with. A `system_prompt` replaces it and steers the domain of the queries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from builders.errors import UserError
from builders.filters.checks import Check
from builders.filters.repetition import text_units

# Private-use characters: no template writes them, and trimming filters leave them alone.
SENTINEL = "\ue000MAGPIE-USER-QUERY\ue001"
SYSTEM_SENTINEL = "\ue000MAGPIE-SYSTEM\ue001"


@dataclass(frozen=True)
class PreQuery:
    prefix: str  # the template's text before the user's words
    end_of_turn: str  # the template's text right after them, stripped (e.g. "<|im_end|>")
    stop: tuple[str, ...]  # where the raw completion of the query stops
    default_system_prompt: str | None = None  # what the template inserts when no system message is given


def render_chat(tokenizer, messages: list[dict], chat_template: str | None = None) -> str:
    if chat_template is None and not getattr(tokenizer, "chat_template", None):
        raise UserError("the model's tokenizer has no chat template; Magpie needs an aligned (chat) model")
    try:
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=False, chat_template=chat_template
        )
    except Exception as err:  # jinja2 raise_exception(...) in the template, e.g. "system role not supported"
        raise UserError(
            f"the chat template refused the conversation ({str(err).splitlines()[0][:160]}); "
            "drop `system_prompt` or use a model whose template accepts it"
        ) from None


def prequery(
    tokenizer,
    history: list[dict] = (),
    system_prompt: str | None = None,
    chat_template: str | None = None,
) -> PreQuery:
    """The prefix before the next user turn of `history` (empty: the first turn), and where that turn ends."""
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    rendered = render_chat(tokenizer, system + list(history) + [{"role": "user", "content": SENTINEL}], chat_template)
    if rendered.count(SENTINEL) != 1:
        raise UserError("the chat template does not write the user's message once; Magpie cannot derive a prefix")
    prefix, suffix = rendered.split(SENTINEL)
    end_of_turn = suffix.strip() or (tokenizer.eos_token or "")
    stop = tuple(dict.fromkeys(s for s in (end_of_turn, tokenizer.eos_token) if s))
    default_system = None if system_prompt or history else default_system_prompt(tokenizer, chat_template)
    return PreQuery(strip_bos(prefix, tokenizer), end_of_turn, stop, default_system)


def default_system_prompt(tokenizer, chat_template: str | None = None) -> str | None:
    """The system text a template inserts on its own, found by rendering with and without a system message.

    With a system message the prefix reads A + SYSTEM + B; without one, a template that inserts a default
    writes A + DEFAULT + B. Templates that write nothing, or refuse the system role, give None.
    """
    user = [{"role": "user", "content": SENTINEL}]
    try:
        with_system = tokenizer.apply_chat_template(
            [{"role": "system", "content": SYSTEM_SENTINEL}, *user],
            tokenize=False,
            chat_template=chat_template,
        )
    except Exception:
        return None
    without = render_chat(tokenizer, user, chat_template).split(SENTINEL)[0]
    head, _, tail = with_system.split(SENTINEL)[0].partition(SYSTEM_SENTINEL)
    if not (without.startswith(head) and without.endswith(tail)) or len(without) < len(head) + len(tail):
        return None
    inserted = without[len(head) : len(without) - len(tail)].strip()
    return inserted or None


def strip_bos(prefix: str, tokenizer) -> str:
    """Drop the template's BOS text when the tokenizer adds BOS itself (raw prompts would get it twice)."""
    bos = tokenizer.bos_token
    if not bos or not prefix.startswith(bos) or tokenizer.bos_token_id is None:
        return prefix
    adds_bos = tokenizer("x")["input_ids"][:1] == [tokenizer.bos_token_id]
    return prefix[len(bos) :] if adds_bos else prefix


def clean_query(text: str, markers: list[str]) -> str:
    """The query up to the first special-token text the model wrote (end of turn, role header), stripped."""
    text = text or ""
    cuts = [text.find(m) for m in markers if m and m in text]
    if cuts:
        text = text[: min(cuts)]
    return text.strip().strip('"').strip()


# --- is the query a request? ---------------------------------------------------------------------------------

# Openings of an assistant's reply, not of a user's request: the model answered instead of asking.
_ASSISTANT_LIKE = re.compile(
    r"^(sure\b|certainly\b|of course\b|absolutely\b|great question|i'?m sorry|i am sorry|as an ai\b|"
    r"i'?m an ai\b|i am an ai\b|here is\b|here'?s\b|(hi|hello)[!,.]? (there[!,.]? )?how can i (help|assist)|"
    r"当然|好的[，,！!]|作为一个?(ai|人工智能)|你好[！!，,]?有什么(可以)?帮)",
    re.IGNORECASE,
)
_REQUEST_VERBS = (
    "write explain describe list give create generate summarize summarise translate tell help find calculate "
    "compare suggest provide design make name classify rewrite edit analyze analyse identify recommend outline "
    "convert solve compose draft plan develop implement define show teach prove evaluate determine estimate"
).split()
_REQUEST_PHRASES = re.compile(
    r"\b(please|can you|could you|would you|will you|help me|i need|i want|i'?d like|i would like|"
    r"i'?m looking for|i am looking for|i'?m trying|i am trying|how do i|how can i|how to|what is|what are|"
    r"what's|why|how does|how do|which|who|when|where|is it|are there|should i|"
    # a user describing a problem or a plan asks for help even without a question mark
    r"help|advice|tips|suggestions?|ideas|recommend\w*|wondering|curious|struggling|stuck|confused|"
    r"considering|planning|having (?:a )?(?:hard|difficult|tough) time|having trouble)\b"
    r"|请|帮我|帮忙|怎么|怎样|如何|什么|为什么|哪|吗|能否|能不能|可以|告诉我|写一|解释|介绍|推荐|翻译|总结|计算",
    re.IGNORECASE,
)


def is_request(text: str) -> bool:
    """A question or an instruction, as a user would write it; a reply-like or aimless text is not."""
    text = (text or "").strip()
    if not text or _ASSISTANT_LIKE.match(text):
        return False
    if "?" in text or "？" in text:
        return True
    first = re.match(r"[A-Za-z']+", text)
    if first and first.group(0).lower() in _REQUEST_VERBS:
        return True
    return bool(_REQUEST_PHRASES.search(text))


def query_checks(
    column: str = "instruction",
    min_units: int = 3,
    drop_truncated: bool = True,
    require_request: bool = True,
) -> list[Check]:
    """Failed request, cut off at the token limit, empty, too short (words; characters for Chinese), not a request."""

    def request_ok(row):
        return row.get("finish_reason") != "error", "request_failed"

    def not_truncated(row):
        return row.get("finish_reason") != "length", "query_truncated"

    def not_empty(row):
        return bool((row[column] or "").strip()), "empty_query"

    def long_enough(row):
        return len(text_units(row[column])[0]) >= min_units, "query_too_short"

    def a_request(row):
        return is_request(row[column]), "not_a_request"

    checks: list[Check] = [request_ok]
    if drop_truncated:
        checks.append(not_truncated)
    checks += [not_empty, long_enough]
    if require_request:
        checks.append(a_request)
    return checks
