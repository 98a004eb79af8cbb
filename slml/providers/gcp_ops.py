"""Google Cloud calls for ``--provider gcp``: the Cloud Run service (``run_v2``), calls
to it with an ID token, and its logs through Cloud Logging's REST API.

Logs: Cloud Logging's ``entries.list``, over httpx.

``POST https://logging.googleapis.com/v2/entries:list`` with ``resourceNames:
["projects/<project>"]``, a filter on the service's ``cloud_run_revision`` resource
(``service_name`` and ``location`` labels), ``orderBy`` and ``pageSize``; the answer is
``{"entries": [LogEntry...], "nextPageToken": str}``. Those entries are the container's
output (our runtime's JSON lines arrive as ``jsonPayload``, other lines as
``textPayload``), Cloud Run's request logs (``httpRequest``) and its system messages.

The bearer token comes from an injected getter; the default uses google-auth's
Application Default Credentials with the ``logging.read`` scope (refreshed when it
expires) and raises ProviderUnavailable when google-auth is missing. The transport is
injected too: tests pass ``httpx.MockTransport``. Follow mode polls every
``FOLLOW_INTERVAL`` seconds (``entries.list`` allows 60 calls a minute per project).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx

from slml.errors import InvokeError, ProviderUnavailable
from slml.pipeline import DeploymentState
from slml.providers import http_answer
from slml.providers.log_cursor import LogCursor, timestamp_key  # noqa: F401  (re-exported)
from slml.providers.log_cursor import follow as follow_log

ENTRIES_URL = "https://logging.googleapis.com/v2/entries:list"
LOGGING_READ_SCOPE = "https://www.googleapis.com/auth/logging.read"
MAX_PAGE = 1000  # entries.list's largest pageSize
FOLLOW_INTERVAL = 5.0
TokenGetter = Callable[[], str]


def default_token_getter(scope: str = LOGGING_READ_SCOPE, *, purpose: str = "read Cloud "
                         "Logging", role: str = "roles/logging.viewer") -> TokenGetter:
    """Application Default Credentials (``gcloud auth application-default login``, a
    service account key, or the metadata server), with ``scope`` (default: read logs);
    ``purpose`` and ``role`` word the errors."""
    try:
        import google.auth
        import google.auth.exceptions
        from google.auth.transport.requests import Request
    except ImportError:
        raise ProviderUnavailable(
            f"to {purpose}, slml needs the google-auth package",
            hint="pip install 'slml[gcp]'",
        ) from None
    try:
        credentials, _ = google.auth.default(scopes=[scope])
    except google.auth.exceptions.DefaultCredentialsError as exc:
        raise ProviderUnavailable(
            f"no Google credentials to {purpose} with: {exc}",
            hint="run `gcloud auth application-default login` or set "
            f"GOOGLE_APPLICATION_CREDENTIALS to a key with {role}",
        ) from None

    def token() -> str:
        if not credentials.valid:
            credentials.refresh(Request())  # type: ignore[no-untyped-call]
        return str(credentials.token)

    return token


def service_filter(service: str, region: str, *, since: str | None = None) -> str:
    """The Logging query for one Cloud Run service's entries (``since``: RFC 3339,
    inclusive)."""
    parts = [
        'resource.type="cloud_run_revision"',
        f'resource.labels.service_name="{service}"',
        f'resource.labels.location="{region}"',
    ]
    if since is not None:
        parts.append(f'timestamp>="{since}"')
    return " AND ".join(parts)


def list_entries(
    client: httpx.Client, token: TokenGetter, *, project: str, filter_: str, order: str,
    limit: int,
) -> list[dict[str, Any]]:  # fmt: skip
    """Up to ``limit`` entries in ``order`` (``"timestamp desc"`` / ``"timestamp asc"``),
    following ``nextPageToken``. Raises InvokeError with Google's message on non-2xx."""
    body: dict[str, Any] = {
        "resourceNames": [f"projects/{project}"],
        "filter": filter_,
        "orderBy": order,
        "pageSize": min(limit, MAX_PAGE),
    }
    entries: list[dict[str, Any]] = []
    while True:
        page = _post(client, token, body)
        entries += page.get("entries", [])
        next_token = page.get("nextPageToken")
        if not next_token or len(entries) >= limit:
            return entries[:limit]
        body = {**body, "pageToken": next_token, "pageSize": min(limit - len(entries), MAX_PAGE)}


def _post(client: httpx.Client, token: TokenGetter, body: dict[str, Any]) -> dict[str, Any]:
    try:
        answer = client.post(ENTRIES_URL, json=body, headers={"Authorization": f"Bearer {token()}"})
    except httpx.HTTPError as exc:
        raise InvokeError(f"cannot reach Cloud Logging: {exc}") from None
    if answer.is_success:
        page: dict[str, Any] = answer.json()
        return page
    try:
        message = answer.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = answer.text[:500]
    raise InvokeError(
        f"Cloud Logging entries.list answered {answer.status_code}: {message}",
        hint="your account needs roles/logging.viewer on the project"
        if answer.status_code in (401, 403)
        else None,
    )


def render_entry(entry: dict[str, Any]) -> str:
    """One line per entry: ``textPayload`` as is, ``jsonPayload`` as compact JSON, a
    request log as ``METHOD URL STATUS LATENCY``, anything else as its JSON payload."""
    if "textPayload" in entry:
        return str(entry["textPayload"]).rstrip("\n")
    if "jsonPayload" in entry:
        return json.dumps(entry["jsonPayload"], separators=(",", ":"))
    request = entry.get("httpRequest")
    if request:
        fields = ("requestMethod", "requestUrl", "status", "latency")
        return " ".join(str(request[f]) for f in fields if f in request)
    payload = entry.get("protoPayload") or {k: entry.get(k) for k in ("logName", "severity")}
    return json.dumps(payload, separators=(",", ":"))


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def tail_logs(
    *, project: str, service: str, region: str, lines: int = 100, follow: bool = False,
    token_getter: TokenGetter | None = None, transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time,
    interval: float = FOLLOW_INTERVAL,
) -> Iterator[str]:  # fmt: skip
    """The service's last ``lines`` entries, oldest first; with ``follow``, then each
    newer entry (polled every ``interval`` s, deduplicated by ``insertId``)."""
    token = token_getter or default_token_getter()
    with httpx.Client(transport=transport, timeout=60.0) as client:
        newest = list_entries(
            client, token, project=project, filter_=service_filter(service, region),
            order="timestamp desc", limit=lines,
        )  # fmt: skip
        entries = newest[::-1]
        yield from (render_entry(e) for e in entries)
        cursor = LogCursor(
            stamp=lambda e: e.get("timestamp"), ident=lambda e: e.get("insertId", ""),
            since=rfc3339(clock()),
        )  # fmt: skip
        cursor.advance(entries)

        def poll(at: LogCursor) -> list[dict[str, Any]]:
            return list_entries(
                client, token, project=project, order="timestamp asc", limit=MAX_PAGE,
                filter_=service_filter(service, region, since=at.since),
            )  # fmt: skip

        if follow:
            yield from follow_log(cursor, poll, render_entry, sleep=sleep, interval=interval)


# -- Cloud Run: the service (run_v2) and calls to it ---------------------------------
REFUSED_HINT = "grant your account roles/run.invoker on the service, or set gcp.auth: none"


TokenFetcher = Callable[[str], str]


def fetch_id_token(audience: str) -> str:
    """A Google ID token for ``audience`` from Application Default Credentials."""
    import google.auth.exceptions
    from google.auth.transport.requests import Request
    from google.oauth2 import id_token

    try:
        return str(id_token.fetch_id_token(Request(), audience))  # type: ignore[no-untyped-call]
    except google.auth.exceptions.GoogleAuthError as exc:
        raise InvokeError(
            f"cannot get a Google ID token for {audience}: {exc}",
            hint="run `gcloud auth application-default login` or set "
            "GOOGLE_APPLICATION_CREDENTIALS to a service account key with run.invoker",
        ) from None


def services_client() -> Any:
    from google.cloud import run_v2

    return run_v2.ServicesClient()


def service_state(service: Any) -> DeploymentState:
    from google.cloud import run_v2

    cond = service.terminal_condition
    if cond.state == run_v2.Condition.State.CONDITION_SUCCEEDED:
        return "running"
    if cond.state == run_v2.Condition.State.CONDITION_FAILED:
        return "down"
    return "unknown"


def service_details(service: Any) -> dict[str, Any]:
    """Plain data from a ``run_v2.Service`` message."""
    return {
        "latest_ready_revision": service.latest_ready_revision.rsplit("/", 1)[-1],
        "traffic": [
            {
                "type": t.type_.name,
                "revision": t.revision,
                "percent": t.percent,
                **({"tag": t.tag, "uri": t.uri} if t.tag else {}),  # a version's own URL
            }
            for t in service.traffic_statuses
        ],
        "condition": service.terminal_condition.state.name,
        "message": service.terminal_condition.message,
    }


def post_json(
    url: str,
    payload: dict[str, Any],
    *,
    headers: dict[str, str],
    transport: httpx.BaseTransport | None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """POST JSON, return the JSON answer; InvokeError for anything else."""
    with httpx.Client(transport=transport, timeout=timeout) as client:
        answer = http_answer.post(client, url, json=payload, headers=headers)
    return http_answer.answer_json(answer, what=url, refused_hint=REFUSED_HINT)
