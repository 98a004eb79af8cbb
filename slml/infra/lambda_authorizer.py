"""The Lambda REQUEST authorizer for ``aws.auth: api_key`` (stdlib only; shipped as
``slml_authorizer.py`` in its own 128 MB function).

API Gateway calls it with the HTTP API payload 2.0 before the model's function runs;
with ``enableSimpleResponses`` it answers ``{"isAuthorized": bool}``. A request with
no ``x-api-key`` header never gets here (the header is the identity source, so the
gateway answers 401 itself), and answers are cached per key value, so a client with
the right key costs one authorizer call per cache period. The key comes from
``SLML_API_KEY``; an empty or missing one authorizes nobody.
"""

from __future__ import annotations

import hmac
import os
from typing import Any


def handler(event: dict[str, Any], context: Any = None) -> dict[str, bool]:
    """Authorize when the request's ``x-api-key`` equals ``SLML_API_KEY`` (constant time)."""
    expected = os.environ.get("SLML_API_KEY", "")
    headers = event.get("headers") or {}
    given = headers.get("x-api-key") or ""
    ok = bool(expected) and hmac.compare_digest(given.encode(), expected.encode())
    return {"isAuthorized": ok}
