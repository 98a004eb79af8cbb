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


# -- hostile input: bounded parsing and bounded echoes (issue 11: D21, D22, D23) -----------


def alias_bomb(levels: int = 9) -> str:
    """A "billion laughs" document: 9**levels strings from a few hundred bytes."""
    lines = ['  l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "bomb: &bomb\n" + "\n".join(lines) + "\nname: *bomb\nmodel: m\naws: {tags: *bomb}\n"


@pytest.mark.timeout(60)  # before the fix this took minutes and gigabytes
def test_alias_bomb_is_refused_fast_and_small() -> None:
    import time
    import tracemalloc

    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        parse_config(alias_bomb())
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert "expands to more than 10,000 values with its aliases expanded" in str(info.value)
    assert elapsed < 1.0 and peak < 20 * 1024 * 1024, (elapsed, peak)
    assert len(str(info.value)) < 500


def test_small_aliases_stay_allowed() -> None:
    config = parse_config(BASE + "aws: {env: &common {LOG: debug}}\nazure: {env: *common}\n")
    assert config.azure.env == {"LOG": "debug"} == config.aws.env


def test_recursive_alias_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="contains itself"):
        parse_config(BASE + "aws: {tags: &t [*t]}\n")


@pytest.mark.parametrize("depth", [33, 5000, 100_000])
def test_deep_nesting_is_a_config_error(depth: int) -> None:
    import time

    started = time.perf_counter()
    with pytest.raises(ConfigError, match="nested more than 32 levels deep"):
        parse_config(BASE + "aws: {tags: " + "[" * depth + "]" * depth + "}\n")
    assert time.perf_counter() - started < 2.0  # was a RecursionError, or seconds of scanning


def test_file_over_a_megabyte_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "slml.yaml"
    with path.open("wb") as out:
        out.write(b"name: ")
        out.truncate(100 * 1024 * 1024)  # sparse: 100 MB without writing them
    with pytest.raises(ConfigError, match="over the 1,048,576 bytes a config may be"):
        load_config(path)


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ("name: {big}\nmodel: m\n", "name:"),
        (BASE + "stage: {big}\n", "stage:"),
        (BASE + "provider: {big}\n", "provider:"),
        (BASE + "aws: {{runtime: {big}}}\n", "aws.runtime:"),
        (BASE + "aws: {{region: {big}}}\n", "aws.region:"),
        (BASE + "aws: {{tags: {{team: {big}}}}}\n", "aws.tags.team:"),
        (BASE + "aws: {{env: {{K: {big}}}}}\n", "aws.env.K:"),
        (BASE + "backend: {big}\n", "backend:"),
        (BASE + "gcp: {{project: {big}}}\n", "gcp.project:"),
        (BASE + "sagemaker: {{image_uri: {big}}}\n", "sagemaker.image_uri:"),
    ],
)
def test_long_values_are_bounded_and_echoed_short(doc: str, where: str) -> None:
    big = "x" * 200_000
    with pytest.raises(ConfigError) as info:
        parse_config(doc.format(big=big))
    message = str(info.value)
    assert where in message
    assert len(message) < 1000, len(message)


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ("aws: {region: us-east-7}", "aws.region: 'us-east-7' is not an AWS region"),
        ("aws: {region: eu-wset-1}", "did you mean eu-west-1"),
        ("sagemaker: {region: mars-1}", "sagemaker.region: 'mars-1' is not an AWS region"),
        ("gcp: {region: us-east-1}", "gcp.region: 'us-east-1' is not a GCP region"),
        ("azure: {region: West Europe}", "did you mean 'westeurope'"),
        ("aws: {throttle: {rate: -1}}", "aws.throttle.rate: -1 is out of range"),
        ("aws: {throttle: {brust: 5}}", "aws.throttle.brust: unknown key"),
        ("aws: {env: {'1BAD': x}}", "aws.env.1BAD"),
        ("aws: {artifact_bucket: My_Bucket}", "aws.artifact_bucket"),
    ],
)
def test_regions_and_new_bounds(doc: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + doc + "\n")
    assert expected in str(info.value)


def test_real_regions_and_throttle_are_accepted() -> None:
    config = parse_config(
        BASE + "aws: {region: ap-southeast-7, throttle: {burst: 20, rate: 5.5}, "
        "reserved_concurrency: 10}\ngcp: {region: europe-west4}\nazure: {region: uksouth}\n"
    )
    assert config.aws.region == "ap-southeast-7" and config.aws.throttle.rate == 5.5
    assert config.aws.throttle.burst == 20 and config.aws.reserved_concurrency == 10


def test_many_errors_are_counted_not_all_listed() -> None:
    doc = (
        "name: iris\nmodel: m\naws: {tags: {"
        + ", ".join(f"k{i}: {'v' * 300}" for i in range(200))
        + "}}\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(doc)
    assert len(str(info.value)) < 10_000
