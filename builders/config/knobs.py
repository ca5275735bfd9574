"""Config fields (`knob`): help text, bounds, and the one type check every value goes through.

A value from YAML, from a flag or from a recipe's own place (a step's `temperature`) is checked by `check_type`
against the field's annotation (lossless conversions only: `0.7` stays a float, `2024` may be a string) and by
the field's bounds; a failure is a one-line UserError naming the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import field
from typing import Any, Literal

from builders.errors import UserError


def knob(
    default: Any = None,
    help: str = "",
    affects_data: bool = True,
    *,
    min: float | None = None,
    max: float | None = None,
    above: float | None = None,
    **kwargs,
) -> Any:
    """A config field with its help text and bounds; mutable defaults are wrapped for you.

    `min`/`max` are inclusive bounds, `above` an exclusive lower bound; `check_bounds` enforces them for every
    config (a null value of an optional key passes). A recipe that redefines a field keeps its base's bounds.
    """
    bounds = {k: v for k, v in (("min", min), ("max", max), ("above", above)) if v is not None}
    metadata = {"help": help, "affects_data": affects_data, **bounds}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata, **kwargs)
    return field(default=default, metadata=metadata, **kwargs)


def check_bounds(config: Any) -> None:
    """Every field's bounds (`knob(min=, max=, above=)`), checked in one place; a UserError names the key."""
    for f in dataclasses.fields(config):
        _check_bound(type(config), f.name, getattr(config, f.name), f.name)


def check_value(config_class: type, name: str, value: Any, key: str) -> Any:
    """`value` for the field `name` of `config_class` given elsewhere (e.g. a step's `temperature`), checked for
    type and bounds as the field is; `key` is how the error names it."""
    value = check_type(value, typing.get_type_hints(config_class)[name], key)
    _check_bound(config_class, name, value, key)
    return value


def _check_bound(config_class: type, name: str, value: Any, key: str) -> None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    bounds = _bounds(config_class, name)
    low, high, above = bounds.get("min"), bounds.get("max"), bounds.get("above")
    if (
        (low is not None and value < low)
        or (high is not None and value > high)
        or (above is not None and value <= above)
    ):
        null = " or null" if _optional(config_class, name) else ""
        raise UserError(f"config key '{key}' must be {_describe(low, high, above)}{null}, got {value!r}")


def _bounds(config_class: type, name: str) -> dict:
    """The bounds of `name` from the most derived class that gives any (a redefinition may omit them)."""
    for cls in config_class.__mro__:
        f = getattr(cls, "__dataclass_fields__", {}).get(name)
        if f is not None and any(k in f.metadata for k in ("min", "max", "above")):
            return dict(f.metadata)
    return {}


def _optional(config_class: type, name: str) -> bool:
    return type(None) in typing.get_args(typing.get_type_hints(config_class)[name])


def _describe(low, high, above) -> str:
    if above is not None and high is not None:
        return f"in ({above}, {high}]"
    if low is not None and high is not None:
        return f"between {low} and {high}"
    if above is not None:
        return f"> {above}"
    return f">= {low}" if low is not None else f"<= {high}"


def check_type(value: Any, tp: Any, key: str) -> Any:
    """Check (and where lossless, convert) `value` against the field's annotation `tp`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return check_type(value, arg, key)
            except UserError as err:
                errors.append(err)
        raise errors[0]
    if origin is Literal:
        if value not in args:
            raise UserError(f"config key '{key}' must be one of {', '.join(map(str, args))}; got {value!r}")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _type_error(key, "true or false", value)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _type_error(key, "an integer", value)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _type_error(key, "a number", value)
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # e.g. `hub_revision: 2024` is still a string
        raise _type_error(key, "a string", value)
    if tp is list or origin is list:
        if isinstance(value, list):
            return [check_type(v, args[0], key) for v in value] if args else value
        if isinstance(value, str) and args and args[0] is str:
            return [v.strip() for v in value.split(",") if v.strip()]  # --formats a,b,c
        raise _type_error(key, "a list", value)
    if tp is dict or origin is dict:
        if isinstance(value, dict):
            return value
        raise _type_error(key, "a mapping", value)
    return value


def _type_error(key: str, expected: str, value: Any) -> UserError:
    return UserError(
        f"config key '{key}' expects {expected}, got {value!r}; fix it in the YAML or on the command line"
    )
