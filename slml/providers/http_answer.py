"""Sending a prediction over HTTP and reading its answer, one way for every target
that serves slml's runtime behind a URL (local, aws, gcp, azure, third-party plug-ins).

``post`` maps a transport failure, ``answer_json`` an HTTP error or a body that is not
JSON, to ``InvokeError`` with the server's own message (the runtime's
``{"error": {"code", "message"}}``, its code named too; a cloud's ``{"message"}``; else
the text) and the target's hint for a refused call (401/403).
"""

from __future__ import annotations

from typing import Any

import httpx

from slml.errors import InvokeError

MAX_TEXT = 500  # characters of a server's answer quoted in an error


def post(client: httpx.Client, url: str, *, what: str | None = None,
         unreachable_hint: str | None = None, **request: Any) -> httpx.Response:  # fmt: skip
    """``client.post(url, **request)``; InvokeError ``cannot reach WHAT`` (default: the
    URL) with ``unreachable_hint`` when the request never got an answer (connection
    refused, timeout, TLS)."""
    try:
        return client.post(url, **request)
    except httpx.HTTPError as exc:
        raise InvokeError(f"cannot reach {what or url}: {exc}", hint=unreachable_hint) from None


def error_message(response: httpx.Response) -> str:
    """The server's own words for an error answer, at most ``MAX_TEXT`` characters."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:MAX_TEXT] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else body.get("message")
        if message:
            return str(message)[:MAX_TEXT]
    return str(body)[:MAX_TEXT]


def error_code(response: httpx.Response) -> str | None:
    """The runtime's machine-readable error code (``invalid_input``, ...), if any."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return str(code) if code else None


def answer_json(
    response: httpx.Response, *, what: str, refused_hint: str | None = None
) -> dict[str, Any]:
    """The JSON object of a successful answer. Raises InvokeError ``WHAT answered CODE:
    MESSAGE`` for an error answer (with ``refused_hint`` for 401 and 403) and for a
    success whose body is not a JSON object."""
    code = response.status_code
    if not response.is_success:
        hint = refused_hint if code in (401, 403) else None
        named = error_code(response)
        status = f"{code} {named}" if named else str(code)
        raise InvokeError(f"{what} answered {status}: {error_message(response)}", hint=hint)
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise InvokeError(f"{what} answered {code} with non-JSON: {response.text[:200]}")
    return data
