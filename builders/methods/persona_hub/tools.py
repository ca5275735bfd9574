"""Persona Hub's tool task: the model defines one function's interface for a persona; here it is read and checked.

With structured output (vLLM) the answer already follows `TOOL_SCHEMA`; a server without it answers in free
text, often inside a ```json fence, read as the `generate` steps read JSON answers (`fit_answer`). Either way the
definition must hold together (every required argument defined, every argument typed) before it counts; it is
written back as compact JSON, the form a function-calling dataset stores.
"""

from __future__ import annotations

import json
import re

from builders.methods.generate_steps.steps import fit_answer
from builders.methods.persona_hub.prompts import ARGUMENT_TYPES, TOOL_SCHEMA

TOOL_ERROR = "_tool_error"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{2,63}$")


def parse_tool(raw: str) -> tuple[str, str | None]:
    """(the definition as compact JSON, None), or ("", the reason it is not a usable definition)."""
    found = fit_answer(raw, {"json": TOOL_SCHEMA})
    if found is None:
        return "", "tool_unparseable"
    tool = json.loads(found)
    error = tool_problem(tool)
    return ("", error) if error else (json.dumps(tool, ensure_ascii=False), None)


def tool_problem(tool) -> str | None:
    """Why `tool` is not a function definition (name, description, parameters of type object), or None."""
    if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or not _NAME.match(tool["name"]):
        return "tool_without_name"
    if not isinstance(tool.get("description"), str) or not tool["description"].strip():
        return "tool_without_description"
    parameters = tool.get("parameters")
    if not isinstance(parameters, dict) or parameters.get("type") != "object":
        return "tool_parameters_not_object"
    arguments = parameters.get("properties")
    if not isinstance(arguments, dict) or not all(
        isinstance(a, dict) and a.get("type") in ARGUMENT_TYPES for a in arguments.values()
    ):
        return "tool_argument_untyped"
    required = parameters.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) and r in arguments for r in required):
        return "tool_requires_undefined_argument"
    return None


def parse_tool_rows(batch, *, column: str = "output"):
    """For rows of the tool task, `column` becomes the checked definition; other tasks' rows pass unchanged. A
    definition that does not hold keeps the model's text (what a kept rejected row shows) and names the reason."""
    outputs, errors = [], []
    for task, raw in zip(batch["task"], batch[column]):
        output, error = parse_tool(raw or "") if task == "tool" else (raw, None)
        outputs.append(raw if error else output)
        errors.append(error)
    return {column: outputs, TOOL_ERROR: errors}


def tool_check(row) -> tuple[bool, str | None]:
    """A check (builders.filters.checks): drops a tool row whose definition did not hold, naming why."""
    return row.get(TOOL_ERROR) is None, row.get(TOOL_ERROR)
