"""boto3 operations against moto, and invoke over httpx.MockTransport (SigV4 checked)."""

from __future__ import annotations

import io
import json
import time
import zipfile

import boto3
import httpx
import pytest
from botocore.credentials import Credentials
from botocore.stub import Stubber
from moto import mock_aws

from slml.errors import InvokeError
from slml.providers import aws_ops

REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield boto3.Session(region_name=REGION)


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("slml_handler.py", "def handler(e, c):\n    return {}\n")
    return buf.getvalue()


def test_status_reads_function_and_api(aws):
    role = aws.client("iam").create_role(
        RoleName="r",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    aws.client("lambda").create_function(
        FunctionName="iris-dev", Runtime="python3.12", Role=role, Handler="slml_handler.handler",
        Code={"ZipFile": _zip()}, MemorySize=1024, Timeout=30, Architectures=["arm64"],
    )  # fmt: skip
    details = aws_ops.function_status(
        function_name="iris-dev", api_id="abc123", region=REGION, session=SplitSession(aws)
    )
    assert details["memory"] == 1024 and details["runtime"] == "python3.12"
    assert details["architectures"] == ["arm64"] and details["state"] == "Active"
    assert details["api_endpoint"] == "https://abc123.execute-api.us-east-1.amazonaws.com"


class SplitSession:
    """moto for Lambda; a botocore Stubber for apigatewayv2 (moto's apigatewayv2 needs
    openapi-spec-validator, which the dev environment does not install)."""

    def __init__(self, session: boto3.Session) -> None:
        self.session = session

    def client(self, name: str):
        client = self.session.client(name)
        if name != "apigatewayv2":
            return client
        stub = Stubber(client)
        stub.add_response(
            "get_api",
            {"ApiId": "abc123", "Name": "iris-dev", "ProtocolType": "HTTP",
             "RouteSelectionExpression": "$request.method $request.path",
             "ApiEndpoint": "https://abc123.execute-api.us-east-1.amazonaws.com"},
            {"ApiId": "abc123"},
        )  # fmt: skip
        stub.activate()
        return client


def test_status_of_a_missing_function_is_an_invoke_error(aws):
    with pytest.raises(InvokeError, match="no function 'gone'"):
        aws_ops.function_status(function_name="gone", api_id=None, region=REGION, session=aws)


def test_logs_come_from_the_log_group_oldest_first(aws):
    logs = aws.client("logs")
    logs.create_log_group(logGroupName="/aws/lambda/iris-dev")
    logs.create_log_stream(logGroupName="/aws/lambda/iris-dev", logStreamName="s")
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName="/aws/lambda/iris-dev", logStreamName="s",
        logEvents=[{"timestamp": now + i, "message": f"line {i}\n"} for i in range(5)],
    )  # fmt: skip
    events = aws_ops.fetch_logs(
        log_group="/aws/lambda/iris-dev", region=REGION, lines=3, session=aws
    )
    assert [m for _, m in events] == ["line 2", "line 3", "line 4"]
    later = aws_ops.fetch_logs(
        log_group="/aws/lambda/iris-dev", region=REGION, lines=0, start_ms=now + 4, session=aws
    )
    assert [m for _, m in later] == ["line 4"]


def test_tail_of_an_empty_group_follows_from_the_clock(aws):
    """Nothing logged yet: follow starts at ``clock()``, so an event older than that is
    never shown and one logged during a poll's sleep is."""
    logs = aws.client("logs")
    logs.create_log_group(logGroupName="g")
    logs.create_log_stream(logGroupName="g", logStreamName="s")
    start = int(time.time() * 1000)

    def sleep(seconds: float) -> None:
        logs.put_log_events(logGroupName="g", logStreamName="s", logEvents=[
            {"timestamp": start - 5000, "message": "before start"},
            {"timestamp": start + 10, "message": "after start"},
        ])  # fmt: skip

    stream = aws_ops.tail_logs(
        log_group="g", region=REGION, follow=True, session=aws, sleep=sleep,
        clock=lambda: start / 1000,
    )  # fmt: skip
    assert next(stream) == "after start"


def test_a_missing_group_is_an_invoke_error_with_the_hint(aws):
    with pytest.raises(InvokeError) as err:
        list(aws_ops.tail_logs(log_group="/nope", region=REGION, session=aws, missing_hint="h"))
    assert err.value.message == f"CloudWatch Logs has no log group /nope in {REGION}"
    assert err.value.hint == "h"


URL = "https://abc123.execute-api.us-east-1.amazonaws.com"


def recorder(status: int = 200, body: dict | None = None):
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body or {"predictions": [0]})

    return seen, httpx.MockTransport(handle)


def test_invoke_with_iam_signs_with_sigv4_for_execute_api():
    seen, transport = recorder()
    creds = Credentials("AKIDEXAMPLE", "secret", "session-token")
    answer = aws_ops.invoke_http(
        URL, {"instances": [[1, 2, 3, 4]]}, auth="iam", region=REGION, credentials=creds,
        transport=transport,
    )  # fmt: skip
    assert answer == {"predictions": [0]}
    (request,) = seen
    assert str(request.url) == f"{URL}/predict"
    auth = request.headers["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert f"/{REGION}/execute-api/aws4_request" in auth
    assert "SignedHeaders=" in auth and "host" in auth.split("SignedHeaders=")[1]
    assert request.headers["x-amz-security-token"] == "session-token"
    assert "x-amz-date" in request.headers
    assert json.loads(request.content) == {"instances": [[1, 2, 3, 4]]}


def test_invoke_with_api_key_sends_the_header_and_no_signature():
    seen, transport = recorder()
    aws_ops.invoke_http(URL, {}, auth="api_key", region=REGION, api_key="k1", transport=transport)
    assert seen[0].headers["x-api-key"] == "k1" and "authorization" not in seen[0].headers


def test_invoke_errors_carry_the_endpoint_message():
    _, transport = recorder(422, {"error": {"code": "invalid_input", "message": "4 columns"}})
    with pytest.raises(InvokeError, match="422 invalid_input: 4 columns"):
        aws_ops.invoke_http(URL, {}, auth="none", region=REGION, transport=transport)
    _, forbidden = recorder(403, {"message": "Forbidden"})
    with pytest.raises(InvokeError) as info:
        aws_ops.invoke_http(URL, {}, auth="none", region=REGION, transport=forbidden)
    assert "execute-api:Invoke" in info.value.hint


def _function_with_versions(aws, count: int) -> str:
    role = aws.client("iam").create_role(
        RoleName="r",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    lam = aws.client("lambda")
    lam.create_function(
        FunctionName="iris-dev", Runtime="python3.12", Role=role, Handler="slml_handler.handler",
        Code={"ZipFile": _zip()},
    )  # fmt: skip
    for n in range(count):
        lam.update_function_code(FunctionName="iris-dev", ZipFile=_zip() + bytes([n]))
        lam.publish_version(FunctionName="iris-dev")
    return "iris-dev"


def _versions(aws) -> list[str]:
    found = aws.client("lambda").list_versions_by_function(FunctionName="iris-dev")
    return [v["Version"] for v in found["Versions"] if v["Version"] != "$LATEST"]


def test_pruning_keeps_the_live_the_routed_and_the_newest_versions(aws):
    name = _function_with_versions(aws, 7)
    assert _versions(aws) == ["1", "2", "3", "4", "5", "6", "7"]
    aws.client("lambda").create_alias(
        FunctionName=name, Name="live", FunctionVersion="4",
        RoutingConfig={"AdditionalVersionWeights": {"5": 0.1}},
    )  # fmt: skip
    deleted = aws_ops.prune_versions(function_name=name, region=REGION, keep_live={"2"},
                                     keep_newest=1, session=aws)  # fmt: skip
    assert deleted == ["1", "3", "6"]
    assert _versions(aws) == ["2", "4", "5", "7"]
    again = aws_ops.prune_versions(function_name=name, region=REGION, keep_live={"2"},
                                   keep_newest=1, session=aws)  # fmt: skip
    assert again == []  # nothing more to delete


def test_pruning_a_function_that_is_gone_is_an_invoke_error(aws):
    with pytest.raises(InvokeError, match="pruning old versions of nope failed"):
        aws_ops.prune_versions(function_name="nope", region=REGION, keep_live=set(),
                               keep_newest=3, session=aws)  # fmt: skip
