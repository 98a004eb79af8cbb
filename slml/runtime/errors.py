"""Errors the serving runtime answers with (stdlib only).

``RequestError`` is a client or server problem already phrased for the caller: it
carries the HTTP status, a stable machine ``code`` and a message that says what was
expected. The app turns it into ``{"error": {"code", "message", "request_id"}}``.

Codes and statuses:

    invalid_json            400  body is not UTF-8 JSON (or nested too deeply)
    invalid_request         400  wrong top-level shape: missing/unknown/both keys
    invalid_csv             400  a text/csv body that cannot be parsed
    invalid_http            400  not valid HTTP/1.1 (answered by the connection layer)
    unauthorized            401  missing or wrong x-api-key
    not_found               404  no such route
    method_not_allowed      405  route exists, method does not
    request_timeout         408  request head or body not in within its timeout
    payload_too_large       413  body over the byte limit
    uri_too_long            414  request line over SLML_MAX_REQUEST_LINE
    batch_too_large         422  more rows than the row limit (in the OpenAPI maxItems)
    unsupported_media_type  415  content type other than JSON (or CSV where served)
    invalid_input           422  rows do not match the model's input signature
    empty_batch             422  no rows at all
    headers_too_large       431  request head over SLML_MAX_HEADER_BYTES
    model_error             500  the model raised on validated input (see the log)
    overloaded              503  over SLML_MAX_CONCURRENCY requests or the connection cap
"""

from __future__ import annotations

import json


class RequestError(Exception):
    """An error answered to the caller as JSON with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def invalid_input(message: str) -> RequestError:
    return RequestError(422, "invalid_input", message)


def invalid_request(message: str) -> RequestError:
    return RequestError(400, "invalid_request", message)


def error_body(code: str, message: str, request_id: str) -> bytes:
    """The JSON error body every answer uses."""
    body = {"error": {"code": code, "message": message, "request_id": request_id}}
    return json.dumps(body, separators=(",", ":")).encode()
