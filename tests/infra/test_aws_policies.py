"""Pure helpers of the Lambda component: names, policies, auth, timeouts."""

from __future__ import annotations

import json

import pytest

from slml.infra import aws_policies as pol


def test_names_fit_aws_limits_and_stay_distinct():
    names = pol.resource_names("iris", "dev")
    assert names["function"] == "iris-dev" and names["log_group"] == "/aws/lambda/iris-dev"
    long_a = pol.resource_names("a" * 40, "stage-one-" + "x" * 10)
    long_b = pol.resource_names("a" * 40, "stage-two-" + "x" * 10)
    assert len(long_a["function"]) <= 64 and len(long_a["role"]) <= 64
    assert long_a["role"] != long_b["role"]
    assert long_a["log_group"] == f"/aws/lambda/{long_a['function']}"


@pytest.mark.parametrize("limit", [10, 20, 64])
def test_bounded_is_stable_and_within_limit(limit):
    name = "my project/with spaces" * 5
    assert len(pol.bounded(name, limit)) <= limit
    assert pol.bounded(name, limit) == pol.bounded(name, limit)
    assert " " not in pol.bounded(name, limit)


def test_trust_policy_only_lets_lambda_assume_the_role():
    doc = json.loads(pol.lambda_trust_policy())
    (statement,) = doc["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"


@pytest.mark.parametrize("suffix", ["", ":*"])
def test_log_write_policy_is_scoped_to_one_log_group(suffix):
    group = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/iris-dev"
    (statement,) = json.loads(pol.log_write_policy(group + suffix))["Statement"]
    assert statement["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statement["Resource"] == [f"{group}:log-stream:*"]


def test_auth_timeout_and_source_arn():
    assert pol.route_authorization("iam") == "AWS_IAM"
    assert pol.route_authorization("api_key") == "CUSTOM"  # the authorizer checks x-api-key
    assert pol.route_authorization("none") == "NONE"
    assert pol.integration_timeout_ms(10) == 10_000
    assert pol.integration_timeout_ms(300) == 30_000
    arn = "arn:aws:execute-api:us-east-1:123456789012:abc123"
    assert pol.api_source_arn(arn) == f"{arn}/*/*"


def test_environment_adds_model_dir_and_key_only_when_given():
    assert pol.environment({"A": "1"}) == {"A": "1", "SLML_MODEL_DIR": "/var/task/model"}
    assert pol.environment({}, api_key="k")["SLML_API_KEY"] == "k"
