"""Output schema: write a public dataset's columns, in its order and with its types, from the rows of a run.

A reproduce config names each column of the public dataset and where its value comes from:

    output_schema:
      prompt: {from: prompt, type: string}                 # one of our columns (or an input column kept)
      text_token_length: {from: text_token_length, type: int64}
      text: {template: "{{ instruction }}\\n\\n{{ output }}"}   # computed from the row (Jinja; `index` is its position)
      openai_fingerprint: {value: ""}                      # a constant
      conversations: {from: conversation, type: [{from: string, value: string}]}

`type` is a `datasets` dtype (string, int64, float64, bool, ...), `[type]` a list of it, `{key: type}` a struct
and `null` the null type (a field that is always null); the default is string (a template of a list or struct
type writes JSON). `{value: null, type: float64}` writes a column of nulls of that type. `output_extra_columns` decides what happens to our columns the schema does not
use: `drop` them, `keep` them after the schema's, or write them row-aligned to `extra/` (`split`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import jinja2
from datasets import Dataset, Features, List, Value

from builders.errors import UserError

SPEC_KEYS = ("from", "type", "template", "value")


@dataclass(frozen=True)
class SchemaColumn:
    name: str
    source: str | None  # one of our columns
    template: str | None  # Jinja over the row's columns
    value: Any  # a constant (when neither source nor template)
    feature: Any


def parse_schema(spec: dict) -> list[SchemaColumn]:
    """The `output_schema` mapping as columns; a UserError names the public column whose entry is wrong."""
    columns = []
    for name, entry in spec.items():
        where = f"output_schema column '{name}'"
        if entry is None or isinstance(entry, str):
            entry = {"from": entry or name}  # `text: story` (or `text:`) is shorthand for {from: story}
        if not isinstance(entry, dict):
            raise UserError(f"{where} must be a mapping with keys {', '.join(SPEC_KEYS)}, got {entry!r}")
        unknown = sorted(set(entry) - set(SPEC_KEYS))
        if unknown:
            raise UserError(f"{where} has unknown key(s) {', '.join(unknown)}; use {', '.join(SPEC_KEYS)}")
        given = [k for k in ("from", "template", "value") if k in entry]
        if len(given) > 1:
            raise UserError(f"{where} gives {' and '.join(given)}; give one of from, template or value")
        template = entry.get("template")
        if template is not None:
            try:
                _environment().parse(template)
            except jinja2.TemplateSyntaxError as err:
                raise UserError(f"{where}: template is not valid Jinja ({err.message}); fix its syntax") from None
        source = entry.get("from", None if given else name)
        columns.append(
            SchemaColumn(str(name), source, template, entry.get("value"), feature(entry.get("type", "string"), where))
        )
    return columns


def feature(spec: Any, where: str):
    """A `datasets` feature from the YAML type: a dtype name, `[type]` (a list) or `{key: type}` (a struct)."""
    if isinstance(spec, list) and len(spec) == 1:
        return List(feature(spec[0], where))
    if isinstance(spec, dict) and spec:
        return {key: feature(value, where) for key, value in spec.items()}
    if spec is None:  # YAML's `null`: a column (or struct field) that is always null, e.g. Magpie's `seed`
        return Value("null")
    if isinstance(spec, str):
        try:
            return Value(spec)
        except (ValueError, TypeError):
            pass
    raise UserError(
        f"{where}: type {spec!r} is not a datasets dtype (string, int64, float64, bool, ...), [type] or {{key: type}}"
    )


def apply_schema(full: Dataset, ours: list[str], schema: list[SchemaColumn], extra: str) -> tuple[Dataset, Dataset]:
    """The public columns computed from `full` (every column a run holds, private ones too), in schema order and
    cast to its types, and the extra columns (`ours` not named by the schema) as `extra` asks: kept after the
    public ones, or returned as a row-aligned second dataset (`split`); dropped otherwise."""
    missing = sorted({c.source for c in schema if c.source is not None and c.source not in full.column_names})
    if missing and len(full) == 0:  # every row was dropped before the stage that adds the column: empty columns
        full = Dataset.from_dict({**{c: [] for c in missing}, **full.to_dict()})
    elif missing:
        shown = ", ".join(c for c in full.column_names if not c.startswith("_")) + ", _row"
        raise UserError(
            f"output_schema takes column(s) {', '.join(missing)}, which this run does not have; its columns are "
            f"{shown}: fix `from` in output_schema"
        )
    templates = {c.name: _environment().from_string(c.template) for c in schema if c.template is not None}
    values = {}
    for c in schema:
        if c.source is not None:
            values[c.name] = full[c.source]
        elif c.template is not None:
            rows = full.select_columns(_usable(full))
            values[c.name] = [_render(templates[c.name], row, i, c) for i, row in enumerate(rows)]
        else:
            values[c.name] = [c.value] * len(full)
    features = {c.name: c.feature for c in schema}
    used = {c.source for c in schema}
    rest = [c for c in ours if c not in features and c not in used and c in full.column_names]
    if extra == "keep":
        values.update({c: full[c] for c in rest})
        features.update({c: full.features[c] for c in rest})
    public = _typed(values, Features(features))
    extras = full.select_columns(rest) if extra == "split" else Dataset.from_dict({})
    return public, extras


def public_schema(full: Dataset, ours: list[str], info, config) -> tuple[Dataset, Dataset | None, Any]:
    """`apply_schema` with the config's keys, and the recipe's card info renamed to the public columns (each
    described as the column of ours it comes from)."""
    schema = parse_schema(config.output_schema)
    public, extras = apply_schema(full, ours, schema, config.output_extra_columns)
    described = {c.name: info.columns.get(c.source, "") for c in schema if c.source is not None}
    text = next((c.name for c in schema if c.source == info.text_column), info.text_column)
    info = replace(info, columns={**info.columns, **described}, text_column=text)
    return public, (extras if config.output_extra_columns == "split" else None), info


def _typed(values: dict, features: Features) -> Dataset:
    """Built with the types the values have, then cast: a rendered "12" becomes the int64 12."""
    try:
        if not any(len(v) for v in values.values()):  # no rows: the types as they are (a cast of none is skipped)
            return Dataset.from_dict({k: [] for k in values}, features=features)
        return Dataset.from_dict(values).cast(features)
    except (ValueError, TypeError) as err:  # pyarrow's conversion errors subclass ValueError
        raise UserError(
            f"output_schema: a column does not convert to its type ({err}); fix `type` or `from`"
        ) from None


def _usable(ds: Dataset) -> list[str]:
    return [c for c in ds.column_names if c.isidentifier()]


def _render(template: jinja2.Template, row: dict, index: int, column: SchemaColumn) -> Any:
    """The rendered text; read as JSON when the column's type is a list or a struct (e.g. Magpie's turns)."""
    where = f"output_schema column '{column.name}'"
    try:
        text = template.render(**row, index=index)
    except jinja2.UndefinedError as err:
        raise UserError(f"{where}: template uses an unknown variable ({err.message})") from None
    if isinstance(column.feature, Value):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{where}: its type is a list or struct, and the template wrote no JSON ({err})") from None


def _environment() -> jinja2.Environment:
    return jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
