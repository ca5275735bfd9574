"""Instructions from documents: parsers for the model's lists of requests.

They return what they can read; callers count what they cannot.
"""

from __future__ import annotations

import re

# "1. text", "1) text", "(1) text", "- text", "* text", "• text", "Query 1: text", "Q1: text"
_ITEM = re.compile(
    r"^\s*(?:\(?\d{1,3}[.)]|[-*•]|(?:query|question|instruction|q)\s*\d{0,3}\s*[:.)-])\s*(?P<text>\S.*)$",
    re.IGNORECASE,
)


def parse_list(text: str) -> list[str]:
    """Items of a numbered or bulleted list, one per item; continuation lines are joined to their item.

    Lines before the first item (a preamble such as "Here are 5 queries:") are ignored; a bare line after
    the list ends is treated as a continuation only when it is indented or follows without a blank line.
    """
    items: list[str] = []
    blank_since_item = False
    for line in (text or "").splitlines():
        match = _ITEM.match(line)
        if match:
            items.append(match["text"].strip())
            blank_since_item = False
        elif not line.strip():
            blank_since_item = True
        elif items and (not blank_since_item or line.startswith((" ", "\t"))):
            items[-1] = f"{items[-1]} {line.strip()}"
    return [_unquote(item) for item in items if _unquote(item)]


def _unquote(item: str) -> str:
    item = re.sub(r"^\*\*(.+?)\*\*:?\s*", r"\1 ", item).strip()  # "**Query:** text" -> "Query text"
    if len(item) >= 2 and item[0] == item[-1] and item[0] in "\"'`":
        item = item[1:-1]
    return item.strip()
