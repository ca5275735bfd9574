"""Generation steps for the generic recipe: a Jinja template filled from a row's columns, one output column.

A step is `{template, output_column}` plus optional `system_prompt`, `structured_output`
(`{"json": schema}`, `{"choice": [...]}` or `{"regex": ...}`), `n`, `use_chat_template` and sampling
overrides (`max_new_tokens`, `temperature`, `top_p`, `top_k`, `repetition_penalty`). Steps run in
order; each can use the columns the previous steps produced (and the fields of their JSON output).

Without structured output (`backend: openai` and a server that is not vLLM), `fit_batch` holds each free-text
answer to the shape asked for: the choice it names, the whole answer matching the regex, the JSON object in it;
an answer that does not fit is dropped (`UNFIT`: the reason for each kind).

The fields of a JSON output become columns typed from the schema, not from the values of a batch: integer
is int64, number float64, boolean bool, string string. Any other field (array, object, a union of types, no
type) is a string column that holds the value as JSON text (a string value as it is), so a nested value
never needs an Arrow struct that could change shape from one output to the next.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from datasets import Features, Value
from jinja2 import meta

from builders.config import SamplingArgs, check_value
from builders.errors import UserError
from builders.prompts import environment

SAMPLING_KEYS = ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty")
STEP_KEYS = {
    "template",
    "output_column",
    "system_prompt",
    "structured_output",
    "n",
    "use_chat_template",
    *SAMPLING_KEYS,
}
TEMPLATE_SUFFIXES = (".jinja", ".j2", ".txt", ".md")
FIELD_TYPES = {"integer": "int64", "number": "float64", "boolean": "bool"}  # any other field: a string column


@dataclass
class Step:
    template: str  # the Jinja source
    output_column: str
    system_prompt: str | None = None
    structured_output: dict[str, Any] | None = None
    n: int = 1
    use_chat_template: bool | None = None
    sampling: dict[str, Any] = field(default_factory=dict)

    @property
    def json_fields(self) -> dict[str, str]:
        """The top-level properties of a JSON-schema output, which become columns, and their Arrow types."""
        schema = (self.structured_output or {}).get("json")
        if isinstance(schema, str):
            schema = json.loads(schema)
        return {name: _field_type(prop) for name, prop in (schema or {}).get("properties", {}).items()}


def _field_type(schema: Any) -> str:
    kind = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(kind, list):  # ["integer", "null"] is a nullable integer; a union of two types is JSON text
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    return FIELD_TYPES.get(kind, "string")


def template_source(value: str, key: str = "template") -> str:
    """A template given inline, or the path of a template file."""
    if value.endswith(TEMPLATE_SUFFIXES) and "\n" not in value:
        path = Path(value)
        if not path.is_file():
            raise UserError(
                f"{key} file '{value}' does not exist; give an existing .jinja file or the template inline"
            )
        return path.read_text()
    return value


def parse_step(raw: dict, index: int) -> Step:
    where = f"steps[{index}]"
    if not isinstance(raw, dict):
        raise UserError(f"{where} must be a mapping with `template` and `output_column`")
    unknown = sorted(set(raw) - STEP_KEYS)
    if unknown:
        raise UserError(f"{where} has unknown key '{unknown[0]}'; a step accepts {', '.join(sorted(STEP_KEYS))}")
    for key in ("template", "output_column"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise UserError(f"{where} needs `{key}` (a string)")
    structured = raw.get("structured_output")
    if structured is not None and (
        not isinstance(structured, dict)
        or len(structured) != 1
        or next(iter(structured)) not in ("json", "choice", "regex")
    ):
        raise UserError(
            f"{where}.structured_output must be one of {{json: schema}}, {{choice: [...]}}, {{regex: ...}}"
        )
    n = raw.get("n", 1)
    if not isinstance(n, int) or n < 1:
        raise UserError(f"{where}.n must be an integer >= 1, got {n!r}")
    source = template_source(raw["template"], f"{where}.template")
    _compile(source, f"{where}.template")
    return Step(
        template=source,
        output_column=raw["output_column"],
        system_prompt=raw.get("system_prompt"),
        structured_output=structured,
        n=n,
        use_chat_template=raw.get("use_chat_template"),
        sampling={k: check_value(SamplingArgs, k, raw[k], f"{where}.{k}") for k in SAMPLING_KEYS if k in raw},
    )


def check_columns(steps: list[Step], columns: list[str]) -> None:
    """Every variable of every template must be a column of the input or an output of an earlier step."""
    available = list(columns)
    for i, step in enumerate(steps):
        needed = meta.find_undeclared_variables(environment().parse(step.template))
        missing = sorted(needed - set(available))
        if missing:
            raise UserError(
                f"the template of step {i + 1} ({step.output_column}) uses column '{missing[0]}', which does not exist; "
                f"the columns are {', '.join(c for c in available if not c.startswith('_'))}"
            )
        clash = [c for c in [step.output_column, *step.json_fields] if c in available]
        if clash:
            raise UserError(f"step {i + 1} would overwrite column '{clash[0]}'; choose another output_column")
        available += [step.output_column, *step.json_fields]


def render_batch(batch: dict[str, list], template: str, prompt_column: str) -> dict[str, list]:
    compiled = environment().from_string(template)
    rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
    return {prompt_column: [compiled.render(**row).strip() for row in rows]}


def parse_json_batch(batch: dict[str, list], column: str, fields: dict[str, str]) -> dict[str, list]:
    """The fields (`Step.json_fields`) of each JSON output as columns, and `_parsed`: False, with every field
    None, when the output is not a JSON object or a field's value does not fit its type. Map it with
    `features=parsed_features(...)`."""
    out: dict[str, list] = {name: [] for name in fields}
    out["_parsed"] = []
    for text in batch[column]:
        cells = _cells(text, fields)
        out["_parsed"].append(cells is not None)
        for name in fields:
            out[name].append(cells[name] if cells is not None else None)
    return out


def parsed_features(features: Features, fields: dict[str, str]) -> Features:
    """The features of a dataset after `parse_json_batch`. Given to its map, they hold every batch to the schema's
    types, where types inferred per batch break the map (a field that is an integer in one batch and a float in
    the next, or null in a whole batch and text in a later one)."""
    return Features({**features, **{name: Value(kind) for name, kind in fields.items()}, "_parsed": Value("bool")})


def _cells(text: Any, fields: dict[str, str]) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
        return {name: _cell(value.get(name), kind) for name, kind in fields.items()}
    except (TypeError, ValueError, AttributeError):  # not JSON, not an object, or a value of the wrong type
        return None


def _cell(value: Any, kind: str) -> Any:
    """The value to store in a column of type `kind` (None for a missing field); ValueError when it does not fit."""
    if value is None or (kind == "string" and isinstance(value, str)) or (kind == "bool" and isinstance(value, bool)):
        return value
    if kind == "string":
        return json.dumps(value)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "int64" and number and isinstance(value, int) and -(2**63) <= value < 2**63:
        return value  # Arrow stores integers in 64 bits; a model can write longer ones (a drop, not a crash)
    if kind == "float64" and number and abs(value) <= sys.float_info.max:  # not NaN or infinite (JSON has neither)
        return float(value)
    raise ValueError(f"{value!r} does not fit a column of {kind}")


def _compile(source: str, where: str) -> None:
    try:
        environment().parse(source)
    except jinja2.TemplateSyntaxError as err:
        raise UserError(f"{where} is not a valid Jinja template (line {err.lineno}: {err.message})") from None


# -- answers written without structured output -----------------------------------------------------------------

UNFIT = {"choice": "not_a_choice", "regex": "no_regex_match", "json": "unparseable_json"}  # drop reason per kind
_FENCED = re.compile(r"```[a-z]*[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
_DECOR = " \t\n*_`\"'.!:"  # around a choice: markdown, quotes, a closing stop


def check_regex(structured: dict[str, Any], where: str) -> None:
    """A regex that Python's `re` checks (without structured output) must compile there."""
    if "regex" not in structured:
        return
    try:
        re.compile(structured["regex"])
    except re.error as err:
        raise UserError(
            f"{where}: the engine has no structured output, so Python's re checks the answers, and it cannot read "
            f"the regex ({err}); write it in Python's syntax or serve the model with vLLM"
        ) from None


def fit_batch(batch: dict[str, list], column: str, structured: dict[str, Any]) -> dict[str, list]:
    """Each answer in `column` replaced by its part that fits `structured` (see `fit_answer`); one that does not
    fit is left as it is, and `_unfit` holds its drop reason (None for the others)."""
    fitted = [fit_answer(text or "", structured) for text in batch[column]]
    reason = UNFIT[next(iter(structured))]
    return {
        column: [text if fit is None else fit for text, fit in zip(batch[column], fitted)],
        "_unfit": [reason if fit is None else None for fit in fitted],
    }


def fit_answer(text: str, structured: dict[str, Any]) -> str | None:
    """The part of a free-text answer that has the shape `structured` asks for, or None.

    choice: the choice the answer is (case, quotes, markdown and a closing stop aside) or begins with as a whole
    word ("Positive. The review..."); regex: the whole answer, stripped; json: the JSON object the answer is,
    holds in a code block, or spans from its first `{` to its last `}`.
    """
    (kind, spec), answer = next(iter(structured.items())), text.strip()
    if kind == "choice":
        plain = answer.strip(_DECOR).casefold()
        for choice in sorted(spec, key=lambda c: len(str(c)), reverse=True):  # "not sure" before "no"
            name = str(choice).strip(_DECOR).casefold()
            if plain == name or (plain.startswith(name) and not plain[len(name)].isalnum()):
                return str(choice)
        return None
    if kind == "regex":
        return answer if re.fullmatch(spec, answer) else None
    start, end = answer.find("{"), answer.rfind("}")
    for candidate in [answer, *_FENCED.findall(answer), answer[start : end + 1] if 0 <= start < end else ""]:
        try:
            if isinstance(json.loads(candidate), dict):
                return candidate.strip()
        except (ValueError, RecursionError):  # a hostile answer nests brackets thousands deep
            continue
    return None
