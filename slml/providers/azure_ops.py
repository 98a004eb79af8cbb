"""Thin operations client for a deployed Function App, over plain HTTPS (httpx).

- ``site(app_id)``: ``GET https://management.azure.com{app_id}`` → the site resource
  (``properties.state``, ``properties.defaultHostName``).
- ``host_key(app_id)``: ``POST {app_id}/host/default/listKeys`` → the ``default``
  function key (the host key every FUNCTION-level function accepts).
- ``predict(url, payload, key=)``: ``POST <url>/predict`` with ``x-functions-key``.

``app_id`` is the site's ARM resource id (the component's ``app_id`` output), so no
subscription lookup is needed. The bearer token comes from an injected getter; the
default one uses azure-identity's ``DefaultAzureCredential`` (az login, environment,
managed identity) when that package is installed, and otherwise raises
ProviderUnavailable saying what to install. The transport is injected too: tests pass
``httpx.MockTransport``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from slml.errors import InvokeError, ProviderUnavailable

MANAGEMENT_URL = "https://management.azure.com"
MANAGEMENT_SCOPE = "https://management.azure.com/.default"
API_VERSION = "2023-12-01"
TokenGetter = Callable[[], str]


def default_token_getter() -> TokenGetter:
    """A token getter backed by azure-identity's DefaultAzureCredential."""
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise ProviderUnavailable(
            "calling the Azure management API needs the azure-identity package",
            hint="pip install azure-identity, then sign in with `az login`",
        ) from None
    credential = DefaultAzureCredential()
    return lambda: credential.get_token(MANAGEMENT_SCOPE).token


class AzureOps:
    """Blocking calls; each raises InvokeError with Azure's message on a non-2xx answer."""

    def __init__(
        self,
        *,
        token_getter: TokenGetter | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
    ) -> None:
        self._token_getter = token_getter
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
        return key

    def predict(self, url: str, payload: dict[str, Any], *, key: str | None) -> dict[str, Any]:
        """POST ``payload`` to ``<url>/predict``; sends ``x-functions-key`` when given."""
        headers = {"x-functions-key": key} if key else {}
        try:
            response = self._client.post(f"{url.rstrip('/')}/predict", json=payload,
                                         headers=headers)  # fmt: skip
        except httpx.HTTPError as exc:
            raise InvokeError(f"calling {url}/predict failed: {exc}") from None
        return _json_or_raise(response, what=f"POST {url}/predict")


def _json_or_raise(response: httpx.Response, *, what: str) -> dict[str, Any]:
    if response.is_success:
        try:
            return response.json()
        except ValueError:
            raise InvokeError(f"{what} answered {response.status_code} without JSON") from None
    detail = _error_message(response)
    hint = None
    if response.status_code in (401, 403):
        hint = "sign in with `az login` to an account with access to this Function App"
    raise InvokeError(f"{what} answered {response.status_code}: {detail}", hint=hint)


def _error_message(response: httpx.Response) -> str:
    """Azure's ``error.message`` (ARM) or the runtime's ``error.message``, else the text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return str(body)[:500]
