"""``slml logs --provider azure``: KQL on the app's ``AppTraces`` through the Log
Analytics query API (httpx.MockTransport checks the URL, token and query text), rows
rendered oldest first, follow polling by ingestion time with an injected sleep."""

from __future__ import annotations

import itertools
import json

import httpx
import pytest

from slml.config import parse_config
from slml.errors import InvokeError, ProviderUnavailable
from slml.providers import azure_ops
from slml.providers.azure import AzureProvider
from slml.providers.azure_ops import AzureOps
from slml.providers.base import NullReporter, ProviderContext
from slml.state import ProjectState

WORKSPACE = "63613592-b6f7-4c3d-a390-22ba13102111"
COLUMNS = [
    {"name": "TimeGenerated", "type": "datetime"}, {"name": "Ingested", "type": "datetime"},
    {"name": "Message", "type": "string"}, {"name": "SeverityLevel", "type": "int"},
    {"name": "_ItemId", "type": "string"},
]  # fmt: skip


def row(n: int, message: str, ingested: str) -> list:
    return [f"2024-05-01T10:00:0{n}.1234567Z", ingested, message, 1, f"item-{n}"]


class FakeLogAnalytics:
    """Answers each query with the next scripted rows; keeps the KQL it was sent."""

    def __init__(self, *answers: list[list]) -> None:
        self.answers = list(answers)
        self.queries: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        assert str(request.url) == f"https://api.loganalytics.io/v1/workspaces/{WORKSPACE}/query"
        assert request.headers["authorization"] == "Bearer la-token"
        self.queries.append(json.loads(request.content)["query"])
        rows = self.answers.pop(0)
        return httpx.Response(200, json={"tables": [
            {"name": "PrimaryResult", "columns": COLUMNS, "rows": rows}]})  # fmt: skip


def ops(fake) -> AzureOps:
    return AzureOps(token_getter=lambda: "mgmt", logs_token_getter=lambda: "la-token",
                    transport=httpx.MockTransport(fake))  # fmt: skip


def test_last_lines_come_newest_first_and_print_oldest_first() -> None:
    fake = FakeLogAnalytics([
        row(2, '{"event":"request","status":200}', "2024-05-01T10:02:00Z"),
        row(1, "Executing 'Functions.http_app_func'", "2024-05-01T10:01:00Z"),
    ])  # fmt: skip
    got = list(azure_ops.tail_logs(ops(fake), workspace_id=WORKSPACE, app_name="iris-app", lines=2))
    assert got == ["Executing 'Functions.http_app_func'", '{"event":"request","status":200}']
    assert fake.queries == [
        "AppTraces\n| where AppRoleName =~ 'iris-app'\n| extend Ingested = ingestion_time()\n"
        "| order by TimeGenerated desc\n| take 2\n"
        "| project TimeGenerated, Ingested, Message, SeverityLevel, _ItemId"
    ]


def test_follow_polls_from_the_last_ingestion_time_without_repeats() -> None:
    first = row(1, "one", "2024-05-01T10:01:00.5Z")
    late = row(0, "late arrival", "2024-05-01T10:01:30Z")  # older event, ingested later
    fake = FakeLogAnalytics([first], [first, late], [], [row(3, "three", "2024-05-01T10:02:00Z")])
    sleeps: list[float] = []
    stream = azure_ops.tail_logs(ops(fake), workspace_id=WORKSPACE, app_name="iris-app",
                                 lines=5, follow=True, sleep=sleeps.append)  # fmt: skip
    assert list(itertools.islice(stream, 3)) == ["one", "late arrival", "three"]
    assert "| where Ingested >= datetime(2024-05-01T10:01:00.5Z)" in fake.queries[1]
    assert "| where Ingested >= datetime(2024-05-01T10:01:30Z)" in fake.queries[2]
    assert "| order by Ingested asc" in fake.queries[3]
    assert sleeps == [azure_ops.LOGS_INTERVAL] * 3


def test_app_names_are_quoted_for_kql() -> None:
    query = azure_ops.traces_query("a'b\\c", lines=1)
    assert "| where AppRoleName =~ 'a\\'b\\\\c'" in query


def test_query_errors_carry_the_service_message() -> None:
    def deny(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"error": {"code": "InsufficientAccessError",
                                                   "message": "The provided credentials have "
                                                   "insufficient access"}})  # fmt: skip

    with pytest.raises(InvokeError) as err:
        list(azure_ops.tail_logs(ops(deny), workspace_id=WORKSPACE, app_name="a"))
    assert ("answered 403 InsufficientAccessError: The provided credentials have insufficient "
            "access") in err.value.message
    assert "az login" in err.value.hint


def context(tmp_path, outputs: dict) -> ProviderContext:
    config = parse_config(f"name: iris\nmodel: {tmp_path}\nprovider: azure\n", base_dir=tmp_path)
    ctx = ProviderContext(config=config, state=ProjectState(tmp_path), reporter=NullReporter())
    ctx.state.write_record(ctx.stage, "azure", {"url": "https://x", "version": 1,
                                                "outputs": outputs})  # fmt: skip
    return ctx


def test_provider_reads_the_recorded_workspace_and_app(tmp_path) -> None:
    fake = FakeLogAnalytics([row(1, "hello", "2024-05-01T10:01:00Z")])
    ctx = context(tmp_path, {"app_name": "iris-app", "workspace_id": WORKSPACE})
    provider = AzureProvider(ops_factory=lambda: ops(fake))
    assert list(provider.logs(ctx=ctx, lines=7)) == ["hello"]
    assert "=~ 'iris-app'" in fake.queries[0] and "| take 7" in fake.queries[0]


def test_a_deployment_without_a_workspace_says_where_logs_are(tmp_path) -> None:
    ctx = context(tmp_path, {"app_name": "iris-app", "app_id": "/subscriptions/s"})
    with pytest.raises(ProviderUnavailable) as err:
        AzureProvider(ops_factory=lambda: ops(FakeLogAnalytics())).logs(ctx=ctx)
    assert "deploy --provider azure" in err.value.hint and "Log stream" in err.value.hint
