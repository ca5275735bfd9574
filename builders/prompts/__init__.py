"""Prompt templates: Jinja files, one folder per method, rendered with strict undefined variables."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2

TEMPLATES = Path(__file__).parent


@cache
def environment(folder: str | None = None) -> jinja2.Environment:
    """Templates of the package, or of a user's folder (then package templates are still reachable)."""
    search = [folder, str(TEMPLATES)] if folder else [str(TEMPLATES)]
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        undefined=jinja2.StrictUndefined,  # a missing variable is an error, never an empty string
        keep_trailing_newline=False,
        autoescape=False,
    )


def render(name: str, folder: str | None = None, **variables) -> str:
    return environment(folder).get_template(name).render(**variables).strip()
