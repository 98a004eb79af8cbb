"""Cloud Run logs through Cloud Logging's ``entries.list`` over httpx.MockTransport: the
exact request bodies (resourceNames, filter, orderBy, pageSize, pageToken), rendering
of textPayload / jsonPayload / request-log entries, paging, following with an injected
sleep, and errors."""

from __future__ import annotations

import itertools
import json

import httpx
import pytest

from slml.errors import InvokeError, ProviderUnavailable
from slml.providers import gcp_ops

SERVICE_FILTER = (
    'resource.type="cloud_run_revision" AND resource.labels.service_name="iris-dev" '
    'AND resource.labels.location="us-central1"'
)


def entry(n: int, ts: str, **payload) -> dict:
    return {
        "insertId": f"id{n}", "timestamp": ts,
        "logName": "projects/p/logs/run.googleapis.com%2Fstderr",
        "resource": {"type": "cloud_run_revision", "labels": {"service_name": "iris-dev"}},
        **payload,
    }  # fmt: skip


class FakeLogging:
    """Answers each POST with the next scripted page and keeps what was asked."""

    def __init__(self, *pages: dict) -> None:
        self.pages = list(pages)
        self.bodies: list[dict] = []
        self.headers: list[httpx.Headers] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "POST" and str(request.url) == gcp_ops.ENTRIES_URL
        self.bodies.append(json.loads(request.content))
        self.headers.append(request.headers)
        return httpx.Response(200, json=self.pages.pop(0))


def tail(fake: FakeLogging, **kwargs):
    return gcp_ops.tail_logs(
        project="proj-1", service="iris-dev", region="us-central1",
        token_getter=lambda: "ya29.token", transport=httpx.MockTransport(fake), **kwargs,
    )  # fmt: skip


def test_last_n_newest_first_from_the_api_printed_oldest_first() -> None:
    request_line = {"ts": 1.5, "level": "info", "event": "request", "status": 200}
    fake = FakeLogging({"entries": [
        entry(3, "2024-05-01T10:00:03.5Z", jsonPayload=request_line),
        entry(2, "2024-05-01T10:00:02Z", textPayload="Listening on 0.0.0.0:8080\n"),
        entry(1, "2024-05-01T10:00:01.123456789Z", httpRequest={
            "requestMethod": "POST", "requestUrl": "https://iris/predict", "status": 200,
            "latency": "0.012s"}),
    ]})  # fmt: skip
    lines = list(tail(fake, lines=3))
    assert lines == [
        "POST https://iris/predict 200 0.012s",
        "Listening on 0.0.0.0:8080",
        '{"ts":1.5,"level":"info","event":"request","status":200}',
    ]
    assert fake.bodies == [{
        "resourceNames": ["projects/proj-1"], "filter": SERVICE_FILTER,
        "orderBy": "timestamp desc", "pageSize": 3,
    }]  # fmt: skip
    assert fake.headers[0]["authorization"] == "Bearer ya29.token"


def test_more_lines_than_a_page_follow_the_page_token() -> None:
    first = [entry(i, f"2024-05-01T10:00:{59 - i % 60:02d}Z", textPayload=f"l{i}")
             for i in range(1000)]  # fmt: skip
    fake = FakeLogging(
        {"entries": first, "nextPageToken": "tok"},
        {"entries": [entry(1000, "2024-05-01T09:00:00Z", textPayload="oldest")]},
    )
    lines = list(tail(fake, lines=1200))
    assert len(lines) == 1001 and lines[0] == "oldest" and lines[-1] == "l0"
    assert [b["pageSize"] for b in fake.bodies] == [1000, 200]
    assert "pageToken" not in fake.bodies[0] and fake.bodies[1]["pageToken"] == "tok"


def test_follow_polls_from_the_newest_timestamp_without_repeats() -> None:
    e1 = entry(1, "2024-05-01T10:00:01Z", textPayload="one")
    e2 = entry(2, "2024-05-01T10:00:02.5Z", textPayload="two")
    e2b = entry(22, "2024-05-01T10:00:02.500Z", textPayload="two-b")  # same instant
    e3 = entry(3, "2024-05-01T10:00:03Z", textPayload="three")
    fake = FakeLogging(
        {"entries": [e2, e1]},
        {"entries": [e2, e2b]},  # the boundary entry again, plus a new one at that instant
        {},  # nothing new
        {"entries": [e2, e2b, e3]},
    )
    sleeps: list[float] = []
    stream = tail(fake, lines=2, follow=True, sleep=sleeps.append)
    assert list(itertools.islice(stream, 4)) == ["one", "two", "two-b", "three"]
    since = [b["filter"].removeprefix(SERVICE_FILTER) for b in fake.bodies]
    assert since == [  # .5Z and .500Z are one instant: either spelling is the boundary
        "", ' AND timestamp>="2024-05-01T10:00:02.5Z"',
        ' AND timestamp>="2024-05-01T10:00:02.500Z"', ' AND timestamp>="2024-05-01T10:00:02.500Z"',
    ]  # fmt: skip
    assert [b["orderBy"] for b in fake.bodies] == ["timestamp desc"] + ["timestamp asc"] * 3
    assert sleeps == [gcp_ops.FOLLOW_INTERVAL] * 3


def test_follow_with_no_history_starts_at_the_clock() -> None:
    fake = FakeLogging({}, {"entries": [entry(1, "2024-05-01T10:00:09Z", textPayload="new")]})
    stream = tail(fake, follow=True, sleep=lambda s: None, clock=lambda: 1714557600.25)
    assert next(stream) == "new"
    assert fake.bodies[1]["filter"].endswith('timestamp>="2024-05-01T10:00:00.250000Z"')


def test_permission_denied_names_the_role() -> None:
    def deny(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"error": {"code": 403, "message": "Permission denied",
                                                  "status": "PERMISSION_DENIED"}})  # fmt: skip

    with pytest.raises(InvokeError) as err:
        list(gcp_ops.tail_logs(project="p", service="s", region="r", token_getter=lambda: "t",
                               transport=httpx.MockTransport(deny)))  # fmt: skip
    assert err.value.message == "Cloud Logging entries.list answered 403: Permission denied"
    assert "roles/logging.viewer" in err.value.hint


def test_timestamps_order_whatever_their_fraction_digits() -> None:
    stamps = ["2024-05-01T10:00:00.5Z", "2024-05-01T10:00:00.123456789Z", "2024-05-01T10:00:00Z",
              "2024-05-01T10:00:00.50000001Z"]  # fmt: skip
    assert sorted(stamps, key=gcp_ops.timestamp_key) == [stamps[2], stamps[1], stamps[0], stamps[3]]


def test_default_token_without_credentials_says_how_to_sign_in(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(ProviderUnavailable) as err:
        gcp_ops.default_token_getter()
    assert "application-default login" in err.value.hint
