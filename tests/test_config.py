from dataclasses import dataclass
from typing import Literal

import pytest
import yaml

from builders.config import RecipeConfig, knob, parse_config, save_config
from builders.errors import UserError


@dataclass
class DemoConfig(RecipeConfig):
    formats: list[str] = knob(["a", "b"], "formats")
    prompts_per_seed: int = knob(1, "prompts")
    level: Literal["low", "high"] | None = knob(None, "a level")


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return str(path)


def test_yaml_supplies_values_and_flags_override_them(tmp_path):
    path = write(tmp_path, "model: tiny-random\ntemperature: 0.2\nbatch_size: 8\nformats: [x, y]\n")
    config = parse_config(
        DemoConfig, ["--config", path, "--temperature", "0.9", "--formats", "p,q", "--dedup", "false"]
    )
    assert config.model == "tiny-random"
    assert config.temperature == 0.9 and isinstance(config.temperature, float)
    assert config.batch_size == 8
    assert config.formats == ["p", "q"]
    assert config.dedup is False


def test_integer_given_for_a_float_becomes_a_float_and_bare_flag_means_true(tmp_path):
    config = parse_config(DemoConfig, ["--temperature", "1", "--overwrite", "--num_samples=3"])
    assert config.temperature == 1.0 and isinstance(config.temperature, float)
    assert config.overwrite is True
    assert config.num_samples == 3


@pytest.mark.parametrize(
    "argv, yaml_text, message",
    [
        (
            ["--temprature", "0.5"],
            None,
            "unknown config key 'temprature' (from --temprature); did you mean 'temperature'?",
        ),
        ([], "modle: x\n", "unknown config key 'modle'"),
        (["--batch_size", "many"], None, "config key 'batch_size' expects an integer, got 'many'"),
        ([], "temperature: hot\n", "config key 'temperature' expects a number, got 'hot'"),
        ([], "dedup: 3\n", "config key 'dedup' expects true or false, got 3"),
        ([], "backend: tgi\n", "config key 'backend' must be one of vllm, openai; got 'tgi'"),
        ([], "formats: 3\n", "config key 'formats' expects a list, got 3"),
        (["--batch_size", "0"], None, "config key 'batch_size' must be >= 1, got 0"),
        ([], "push_to_hub: true\n", "push_to_hub is true but hub_repo_id is empty"),
        ([], "- a\n- b\n", "must be a mapping"),
        ([], "model: [unclosed\n", "is not valid YAML at line"),
    ],
)
def test_bad_config_is_a_one_line_error_naming_the_key(tmp_path, argv, yaml_text, message):
    if yaml_text is not None:
        argv = ["--config", write(tmp_path, yaml_text), *argv]
    with pytest.raises(UserError) as err:
        parse_config(DemoConfig, argv)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        parse_config(DemoConfig, ["--config", str(tmp_path / "nope.yaml")])


def test_saved_config_parses_back_to_the_same_config(tmp_path):
    config = parse_config(DemoConfig, ["--temperature", "0.3", "--formats", "x", "--system_prompt", "Be brief."])
    save_config(config, tmp_path / "config.yaml")
    again = parse_config(DemoConfig, ["--config", str(tmp_path / "config.yaml")])
    assert again == config
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["temperature"] == 0.3


def test_fingerprint_ignores_keys_that_do_not_change_the_data():
    a = parse_config(DemoConfig, ["--output_dir", "x", "--max_concurrency", "3"])
    b = parse_config(DemoConfig, ["--output_dir", "y", "--max_concurrency", "9"])
    c = parse_config(DemoConfig, ["--output_dir", "x", "--temperature", "0.1"])
    assert a.fingerprint_hash() == b.fingerprint_hash()
    assert a.fingerprint_hash() != c.fingerprint_hash()


def test_help_lists_keys_and_exits_zero(capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_config(DemoConfig, ["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--prompts_per_seed" in out and "--temperature" in out
    assert "--backend {vllm,openai}" in out  # a choice lists its values
    assert "--level {low,high} | None" in out  # an optional choice too (not "Optional")
