"""Thin operations client for a deployed Function App, over plain HTTPS (httpx).

- ``site(app_id)``: ``GET https://management.azure.com{app_id}`` → the site resource
  (``properties.state``, ``properties.defaultHostName``).
- ``host_key(app_id)``: ``POST {app_id}/host/default/listKeys`` → the ``default``
  function key (the host key every FUNCTION-level function accepts).
- ``predict(url, payload, key=)``: ``POST <url>/predict`` with ``x-functions-key``.
- ``query(workspace_id, kql)``: ``POST https://api.loganalytics.io/v1/workspaces/<id>/query``
  → rows as dicts; ``tail_logs`` runs ``traces_query`` on the app's ``AppTraces`` (what
  the Functions host sends to the component's Application Insights).

``app_id`` is the site's ARM resource id (the component's ``app_id`` output), so no
subscription lookup is needed. The bearer token comes from an injected getter; the
default one uses azure-identity's ``DefaultAzureCredential`` (az login, environment,
managed identity) when that package is installed, and otherwise raises
ProviderUnavailable saying what to install. The transport is injected too: tests pass
``httpx.MockTransport``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from slml.errors import InvokeError, ProviderUnavailable
from slml.providers import http_answer
from slml.providers.log_cursor import LogCursor
from slml.providers.log_cursor import follow as follow_log

REFUSED_HINT = "sign in with `az login` to an account with access to this Function App"

MANAGEMENT_URL = "https://management.azure.com"
MANAGEMENT_SCOPE = "https://management.azure.com/.default"
API_VERSION = "2023-12-01"
LOGS_QUERY_URL = "https://api.loganalytics.io/v1/workspaces/{workspace}/query"
LOGS_SCOPE = "https://api.loganalytics.io/.default"
#: Application Insights data reaches the workspace minutes after it is logged.
LOGS_INTERVAL = 10.0
TokenGetter = Callable[[], str]


def default_token_getter(scope: str = MANAGEMENT_SCOPE) -> TokenGetter:
    """A token getter for ``scope`` backed by azure-identity's DefaultAzureCredential."""
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise ProviderUnavailable(
            "calling the Azure management API needs the azure-identity package",
            hint="pip install azure-identity, then sign in with `az login`",
        ) from None
    credential = DefaultAzureCredential()
    return lambda: credential.get_token(scope).token


class AzureOps:
    """Blocking calls; each raises InvokeError with Azure's message on a non-2xx answer."""

    def __init__(
        self,
        *,
        token_getter: TokenGetter | None = None,
        logs_token_getter: TokenGetter | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
    ) -> None:
        self._token_getter = token_getter
        self._logs_token_getter = logs_token_getter
        self._client = httpx.Client(transport=transport, timeout=timeout)

    def _token(self) -> str:
        if self._token_getter is None:
            self._token_getter = default_token_getter()
        return self._token_getter()

    def _management(self, method: str, app_id: str, suffix: str = "") -> dict[str, Any]:
        response = self._client.request(
            method,
            f"{MANAGEMENT_URL}{app_id}{suffix}",
            params={"api-version": API_VERSION},
            headers={"Authorization": f"Bearer {self._token()}"},
        )
        return _json_or_raise(response, what=f"{method} {app_id}{suffix}")

    def site(self, app_id: str) -> dict[str, Any]:
        """The site resource (``properties.state``, ``properties.defaultHostName``)."""
        return self._management("GET", app_id)

    def host_key(self, app_id: str) -> str:
        """The app's ``default`` function key."""
        keys = self._management("POST", app_id, "/host/default/listKeys")
        key = (keys.get("functionKeys") or {}).get("default")
        if not key:
            raise InvokeError(
                f"the Function App {app_id} returned no default function key",
                hint="wait for the first deployment to finish starting, then retry",
            )
        return str(key)

    def predict(self, url: str, payload: dict[str, Any], *, key: str | None) -> dict[str, Any]:
        """POST ``payload`` to ``<url>/predict``; sends ``x-functions-key`` when given."""
        headers = {"x-functions-key": key} if key else {}
        response = http_answer.post(self._client, f"{url.rstrip('/')}/predict", json=payload,
                                    headers=headers)  # fmt: skip
        return _json_or_raise(response, what=f"POST {url}/predict")

    def query(self, workspace_id: str, kql: str) -> list[dict[str, Any]]:
        """Run a KQL query on the Log Analytics workspace; the first table's rows as
        ``{column: value}`` dicts."""
        if self._logs_token_getter is None:
            self._logs_token_getter = default_token_getter(LOGS_SCOPE)
        url = LOGS_QUERY_URL.format(workspace=workspace_id)
        try:
            response = self._client.post(
                url, json={"query": kql},
                headers={"Authorization": f"Bearer {self._logs_token_getter()}"},
            )  # fmt: skip
        except httpx.HTTPError as exc:
            raise InvokeError(f"cannot reach Log Analytics: {exc}") from None
        tables = _json_or_raise(response, what=f"Log Analytics query on {workspace_id}")
        table = (tables.get("tables") or [{}])[0]
        columns = [c["name"] for c in table.get("columns", [])]
        return [dict(zip(columns, row, strict=False)) for row in table.get("rows", [])]


def traces_query(app_name: str, *, lines: int, since: str | None = None) -> str:
    """KQL for the app's ``AppTraces``: the newest ``lines`` (descending), or with
    ``since`` everything ingested at or after it (ascending by ingestion time, so a
    late-arriving record is not skipped)."""
    quoted = "'" + app_name.replace("\\", "\\\\").replace("'", "\\'") + "'"
    parts = [
        "AppTraces",
        f"| where AppRoleName =~ {quoted}",
        "| extend Ingested = ingestion_time()",
    ]
    if since is None:
        parts += ["| order by TimeGenerated desc", f"| take {lines}"]
    else:
        parts += [f"| where Ingested >= datetime({since})", "| order by Ingested asc",
                  "| take 1000"]  # fmt: skip
    parts.append("| project TimeGenerated, Ingested, Message, SeverityLevel, _ItemId")
    return "\n".join(parts)


def tail_logs(
    ops: AzureOps, *, workspace_id: str, app_name: str, lines: int = 100, follow: bool = False,
    sleep: Callable[[float], None] = time.sleep, interval: float = LOGS_INTERVAL,
) -> Iterator[str]:  # fmt: skip
    """The app's last ``lines`` trace messages, oldest first; with ``follow``, then each
    one ingested later (polled every ``interval`` s, deduplicated by ``_ItemId``)."""
    rows = ops.query(workspace_id, traces_query(app_name, lines=lines))[::-1]
    yield from (_message(row) for row in rows)
    cursor = LogCursor(stamp=_ingested, ident=lambda row: row.get("_ItemId"))
    cursor.advance(rows)

    def poll(at: LogCursor) -> list[dict[str, Any]]:
        new = ops.query(workspace_id, traces_query(app_name, lines=lines, since=at.since))
        return new if at.since is not None else new[::-1]  # still the newest-first tail

    if follow:
        yield from follow_log(cursor, poll, _message, sleep=sleep, interval=interval)


def _message(row: dict[str, Any]) -> str:
    return str(row.get("Message", ""))


def _ingested(row: dict[str, Any]) -> str | None:
    return str(row["Ingested"]) if row.get("Ingested") else None


def _json_or_raise(response: httpx.Response, *, what: str) -> dict[str, Any]:
    return http_answer.answer_json(response, what=what, refused_hint=REFUSED_HINT)
