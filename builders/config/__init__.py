"""Recipe configuration: dataclasses filled from a YAML file, then from command-line flags.

Behaves like TRL's `TrlParser`: `--config FILE` supplies values, `--key value` flags override them, and an
unknown key or a value of the wrong type is a one-line error naming the key and the fix. Every value, from
YAML or from the command line, goes through the same type check (`knobs.check_type`), so `--temperature 0.7`
and `temperature: 0.7` give the same float.

Each recipe declares one flat dataclass that extends `RecipeConfig` with its own keys. Fields whose
`metadata={"affects_data": False}` can change between a run and its resume (they change speed or
where things go, not which rows come out).

The package: `knobs.py` (fields, bounds, the type check), `recipe.py` (the grouped keys and `RecipeConfig`),
`parsing.py` (YAML file and flags).
"""

from builders.config.knobs import check_bounds, check_value, knob
from builders.config.parsing import parse_config, save_config
from builders.config.recipe import (
    DataArgs,
    DedupArgs,
    EngineArgs,
    HubArgs,
    OutputArgs,
    QualityArgs,
    RecipeConfig,
    SamplingArgs,
)

__all__ = [
    "DataArgs",
    "DedupArgs",
    "EngineArgs",
    "HubArgs",
    "OutputArgs",
    "QualityArgs",
    "RecipeConfig",
    "SamplingArgs",
    "check_bounds",
    "check_value",
    "knob",
    "parse_config",
    "save_config",
]
