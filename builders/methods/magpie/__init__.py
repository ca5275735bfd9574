"""Magpie: the pre-query prefix (`prequery`), the query filters, and the tags of its released datasets (`tags`,
`release`)."""

from builders.methods.magpie.prequery import (
    PreQuery,
    clean_query,
    default_system_prompt,
    is_request,
    prequery,
    query_checks,
    render_chat,
    strip_bos,
)

__all__ = [
    "PreQuery",
    "clean_query",
    "default_system_prompt",
    "is_request",
    "prequery",
    "query_checks",
    "render_chat",
    "strip_bos",
]
