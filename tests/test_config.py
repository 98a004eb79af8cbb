from pathlib import Path

import pytest

from slml.config import load_config, parse_config
from slml.errors import ConfigError

BASE = "name: iris\nmodel: artifacts/iris\n"


def test_defaults_and_relative_model_path(tmp_path: Path) -> None:
    (tmp_path / "slml.yaml").write_text(BASE)
    config = load_config(tmp_path / "slml.yaml")
    assert config.provider == "local"
    assert config.stage == "dev"
    assert config.model == (tmp_path / "artifacts" / "iris").resolve()
    assert config.aws.runtime == "python3.12"
    assert config.aws.auth == "iam"
    assert config.azure.plan == "flex"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("aws: {memory: 12000}", "aws.memory: 12000 is out of range"),
        ("aws: {memry: 1024}", "aws.memry: unknown key"),
        ("provider: gcpp", "provider: 'gcpp' is not allowed; expected 'local', 'aws'"),
        ("aws: {architecture: arm}", "aws.architecture: 'arm' is not allowed"),
        ("aws: {log_retention_days: 4}", "aws.log_retention_days: 4 is not a CloudWatch"),
        ("sagemaker: {memory: 1500}", "sagemaker.memory: 1500 is not a multiple of 1024"),
        ("sagemaker: {max_concurrency: 500}", "sagemaker.max_concurrency: 500 is out of range"),
        ("sagemaker: {data_capture: {enabled: true}}", "data_capture needs an instance-backed"),
        ("gcp: {min_instances: 5, max_instances: 2}", "min_instances (5) is above"),
        ("gcp: {cpu: '3'}", "gcp.cpu: '3' is not allowed"),
        ("azure: {plan: premium}", "azure.plan: 'premium' is not allowed"),
        ("stage: Prod", "stage:"),
        ("extra_top: 1", "extra_top: unknown key"),
    ],
)
def test_errors_name_the_key_path(extra: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + extra + "\n")
    assert expected in str(info.value)


def test_bad_name_and_missing_model() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("name: My_Model\n")
    message = str(info.value)
    assert "name: 'My_Model' is not a valid name" in message
    assert "model: required key is missing" in message


def test_malformed_yaml_names_the_line() -> None:
    with pytest.raises(ConfigError, match="not valid YAML at line 3, column 1"):
        parse_config("name: iris\nmodel: [a\n")


def test_not_a_mapping() -> None:
    with pytest.raises(ConfigError, match="expected a mapping"):
        parse_config("- a\n- b\n")


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "slml.yaml")
    assert "slml init" in str(info.value)


def test_overrides_are_validated() -> None:
    config = parse_config(BASE)
    assert config.with_overrides(provider="aws", stage="prod").provider == "aws"
    with pytest.raises(ConfigError, match="provider: 'nope' is not allowed"):
        config.with_overrides(provider="nope")
    with pytest.raises(ConfigError, match="stage"):
        config.with_overrides(stage="PROD!")


def test_example_config_is_valid() -> None:
    root = Path(__file__).resolve().parents[1]
    config = load_config(root / "examples" / "iris" / "slml.yaml")
    assert config.name == "iris"
    assert {config.aws.auth, config.gcp.auth, config.azure.auth} == {"iam", "function"}
