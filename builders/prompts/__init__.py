"""Prompt templates: Jinja files, one folder per method, rendered with strict undefined variables.

A run's `prompts_folder` (every recipe's key) holds the user's own templates, laid out as this folder
(`cosmopedia/textbook_academic.jinja`, `self_instruct/alpaca_tasks.jinja`, ...): a template found there
replaces ours, so a paper's own wording runs with our variables filling it (docs/reproduce.md).
"""

from __future__ import annotations

import difflib
from functools import cache
from pathlib import Path

import jinja2

from builders.errors import UserError

TEMPLATES = Path(__file__).parent
_user_folder: str | None = None  # the running recipe's prompts_folder (set by `use_folder`)


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


def use_folder(folder: str | None) -> None:
    """Make `folder` the templates that `render` looks in first, for this run (None: ours only).

    Every `.jinja` file in it must be named after one of ours (files starting with `_` are the user's own
    includes), so a misnamed override is an error, not a silent fallback to our wording.
    """
    global _user_folder
    _user_folder = None
    if folder is None:
        return
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"prompts_folder '{folder}' is not a folder; give a folder laid out as builders/prompts")
    ours = {p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*.jinja")}
    for path in sorted(root.rglob("*.jinja")):
        name = path.relative_to(root).as_posix()
        if name not in ours and not path.name.startswith("_"):
            near = difflib.get_close_matches(name, [n for n in ours if "/_" not in n], n=3, cutoff=0)
            raise UserError(
                f"prompts_folder '{folder}' holds {name}, which replaces none of our templates; "
                f"name it after one of them, e.g. {', '.join(near)}"
            )
    _user_folder = str(root)


def render(name: str, folder: str | None = None, **variables) -> str:
    """`name` from `folder` (a caller's own), else from the run's prompts_folder, else ours."""
    if folder is not None:
        return environment(folder).get_template(name).render(**variables).strip()
    folder = _user_folder
    try:
        return environment(folder).get_template(name).render(**variables).strip()
    except jinja2.UndefinedError as err:
        if not folder:
            raise
        raise UserError(
            f"prompt template {name} in prompts_folder '{folder}' uses an unknown variable ({err.message}); "
            f"it is given {', '.join(sorted(variables))}"
        ) from None
