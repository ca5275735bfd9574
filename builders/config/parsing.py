"""Reading a config: a YAML file (`--config FILE`), then `--key value` flags, every value type-checked.

Behaves like TRL's `TrlParser`: an unknown key or a value of the wrong type is a one-line error naming the key
and the fix. Without `--config` and `--dataset` a recipe runs its offline default, `configs/<recipe>/demo.yaml`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from builders.config.knobs import check_type
from builders.errors import UserError

if TYPE_CHECKING:
    from builders.config.recipe import RecipeConfig


def parse_config(config_class: type[RecipeConfig], argv: list[str] | None = None) -> RecipeConfig:
    """`--config FILE` then `--key value` overrides; unknown keys and wrong types are UserErrors.

    Without `--config` and `--dataset`, the recipe's offline default config is the base (`_offline_default`).
    """
    argv = sys.argv[1:] if argv is None else argv
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    parser = _build_argparser(config_class)
    if any(a in ("-h", "--help") for a in argv):
        parser.print_help()
        sys.exit(0)

    values: dict[str, Any] = {}
    config_path, overrides = _split_argv(argv, fields)
    if config_path is None and "dataset" not in dict(overrides):
        config_path = _offline_default(config_class)
    if config_path:
        values.update(_read_yaml(config_path, fields))
    hints = typing.get_type_hints(config_class)
    for key, raw in overrides:
        values[key] = _flag_value(raw, hints[key])

    typed = {key: check_type(value, hints[key], key) for key, value in values.items()}
    try:
        return config_class(**typed)
    except TypeError as err:  # a required field without a value
        raise UserError(f"config is incomplete: {err}") from None


def _offline_default(config_class: type) -> str | None:
    """`configs/<recipe>/demo.yaml` beside the recipe script, announced in one line; None if it has none.

    A run given neither `--config` nor `--dataset` uses it, so `python recipes/X.py` works on a fresh clone:
    shipped data, the embedded SmolLM2 model, minutes on a CPU, output in `outputs/<recipe>`.
    """
    script = getattr(sys.modules.get(config_class.__module__), "__file__", None)
    if not script:
        return None
    recipe = Path(script).stem
    repo = Path(script).resolve().parents[1]
    default = repo / "configs" / recipe / "demo.yaml"
    if not default.is_file():
        return None
    if os.environ.get("RANK", "0") == "0":  # under accelerate launch, one line for the whole run
        print(
            f"{recipe}: no --config or --dataset given: running the offline default configs/{recipe}/demo.yaml (shipped data, "
            f"the embedded model, a few minutes on a CPU); at full scale: --config configs/{recipe}/default.yaml",
            flush=True,
        )
    return str(default)


def _flag_value(raw: str | None, tp: Any) -> Any:
    """A flag's value read as YAML (`--top_k 50` is an int); a string key keeps text that YAML reads otherwise
    or cannot read (a regex such as `[a-z]+` or `(a|b): c`)."""
    if raw is None:
        return True  # a bare flag means true
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    takes_str = tp is str or (typing.get_origin(tp) in (typing.Union, types.UnionType) and str in typing.get_args(tp))
    if takes_str and isinstance(value, (list, dict)):
        return raw
    return value


def _split_argv(argv: list[str], fields: dict) -> tuple[str | None, list[tuple[str, str | None]]]:
    config_path, overrides, i = None, [], 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            raise UserError(f"unexpected argument '{arg}'; flags look like --key value (see --help)")
        key, eq, inline = arg[2:].partition("=")
        key = key.replace("-", "_")
        if eq:
            raw = inline
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            raw, i = argv[i + 1], i + 1
        else:
            raw = None  # a bare flag means true
        if key == "config":
            if raw is None:
                raise UserError("--config needs a file path")
            config_path = raw
        elif key not in fields:
            raise UserError(f"unknown config key '{key}' (from --{key}); {_did_you_mean(key, fields)}")
        else:
            overrides.append((key, raw))
        i += 1
    return config_path, overrides


def _read_yaml(path: str, fields: dict) -> dict[str, Any]:
    if not Path(path).is_file():
        raise UserError(f"config file '{path}' does not exist; pass an existing file to --config")
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"config file '{path}' is not valid YAML{where}; fix its syntax") from None
    if not isinstance(data, dict):
        raise UserError(f"config file '{path}' must be a mapping of key: value")
    for key in data:
        if key not in fields:
            raise UserError(f"unknown config key '{key}' in {path}; {_did_you_mean(str(key), fields)}")
    return data


def _did_you_mean(key: str, fields: dict) -> str:
    import difflib

    close = difflib.get_close_matches(key, fields, n=1)
    return f"did you mean '{close[0]}'?" if close else "run with --help to list the keys"


def _build_argparser(config_class: type) -> argparse.ArgumentParser:
    """Only used for --help: the listing of keys, their defaults and what they do."""
    parser = argparse.ArgumentParser(
        description=(config_class.__doc__ or "").strip(),
        usage="%(prog)s [--config FILE] [--key value ...]",
    )
    parser.add_argument("--config", help="YAML file with values for the keys below")
    hints = typing.get_type_hints(config_class)
    for f in dataclasses.fields(config_class):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kind = _kind(hints[f.name])
        parser.add_argument(f"--{f.name}", metavar=kind, help=f"{f.metadata.get('help', '')} (default: {default!r})")
    return parser


def save_config(config: RecipeConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True))


def _kind(tp: Any) -> str:
    """How --help names a key's type: `int | None`, `{a,b,c}` for a choice (optional or not), `list[str]`."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    choices = (
        tp if typing.get_origin(tp) is Literal else next((a for a in args if typing.get_origin(a) is Literal), None)
    )
    if choices is not None:
        null = " | None" if type(None) in typing.get_args(tp) else ""
        return "{" + ",".join(map(str, typing.get_args(choices))) + "}" + null
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
