"""The one ASGI app every target serves (Starlette).

``create_app(model_dir)`` loads the model once, eagerly, and returns the app; ``get_app()``
is the process-wide instance built from the environment (what Lambda, Azure and
container entrypoints import at init). Routes:

    POST /predict        {"instances": [...]} or {"inputs": {...}}
                         → {"predictions": [...], "model", "version"} (+ "classes" when
                           the served method is predict_proba / decision_function)
    POST /invocations    the same, plus text/csv rows (SageMaker)
    GET  /healthz, /ping {"status": "ok", "model", "version"}
    GET  /metadata       the manifest
    GET  /openapi.json   OpenAPI 3.0.3 built from the model's signature
    GET  /metrics        Prometheus text (slml/runtime/metrics.py); SLML_CAPTURE turns on
                         captured traffic (slml/runtime/capture.py)

Environment: ``SLML_MODEL_DIR``, ``SLML_MAX_BODY_BYTES`` (default 6 MiB),
``SLML_MAX_BATCH_ROWS`` (default 10000), ``SLML_MAX_CONCURRENCY`` (default 256 requests
in the app at once, health checks aside; more get a 503 ``overloaded``), ``SLML_API_KEY``
(when set, every route but /healthz and /ping needs the header ``x-api-key`` with that
value, else 401; set but empty or blank, the app refuses to start: ValueError).

Errors are ``{"error": {"code", "message", "request_id"}}`` (codes in
slml/runtime/errors.py). Bad input is always a 4xx. When the model has an input
signature, the input is validated first and any exception from the model is a 500
``model_error`` (traceback in the log). Without a signature the runtime cannot tell bad
input from a broken model, so a ValueError/TypeError/OverflowError/IndexError from the
model is answered 422 ``invalid_input`` with its message; anything else is a 500.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from slml.runtime.capture import from_env as capture_from_env
from slml.runtime.errors import RequestError
from slml.runtime.logs import RateLimiter, get_logger, log_event
from slml.runtime.metrics import RuntimeMetrics
from slml.runtime.scheduling import InlinePolicy
from slml.runtime.validation import DEFAULT_MAX_ROWS, parse_csv

DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024
DEFAULT_MAX_CONCURRENCY = 256
_OPEN_PATHS = frozenset({"/healthz", "/ping"})  # health checks: no key, no concurrency limit
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
_INPUT_ERRORS = (ValueError, TypeError, OverflowError, IndexError, KeyError)
_TRACEBACKS = RateLimiter(burst=5, window=60.0)  # per distinct error message


def create_app(
    model_dir: str | Path | None = None,
    *,
    model: Any = None,
    max_body_bytes: int | None = None,
    max_batch_rows: int | None = None,
    api_key: str | None = None,
    max_concurrency: int | None = None,
    logger: logging.Logger | None = None,
) -> Starlette:
    """Load the model (unless ``model``, a LoadedModel, is given) and build the app.

    Explicit arguments win over the environment. Raises ArtifactFormatError /
    ArtifactIntegrityError when the model cannot be loaded, ValueError on a bad env value
    or an empty API key (checked before the model loads).
    """
    key = api_key_from_env() if api_key is None else _checked_key(api_key, "api_key")
    if model is None:
        from slml.runtime.loader import load

        model_dir = model_dir or os.environ.get("SLML_MODEL_DIR")
        if not model_dir:
            raise ValueError("no model: pass model_dir or set SLML_MODEL_DIR")
        model = load(model_dir)
    service = _Service(
        model,
        max_body=max_body_bytes or _env_int("SLML_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
        max_rows=max_batch_rows or _env_int("SLML_MAX_BATCH_ROWS", DEFAULT_MAX_ROWS),
        api_key=key,
        logger=logger or get_logger(),
    )
    limit = max_concurrency or _env_int("SLML_MAX_CONCURRENCY", DEFAULT_MAX_CONCURRENCY)
    app = Starlette(
        routes=service.routes(),
        exception_handlers={HTTPException: _http_exception},
    )
    app.state.model, app.state.metrics = model, service.metrics
    app.add_middleware(
        _RequestMiddleware,  # type: ignore[arg-type]
        logger=service.logger,
        max_concurrency=limit,
        metrics=service.metrics,
    )
    return app


_APP: Starlette | None = None


def get_app() -> Starlette:
    """The process-wide app from the environment, created on first call."""
    global _APP
    if _APP is None:
        _APP = create_app()
    return _APP


def api_key_from_env() -> str | None:
    """``SLML_API_KEY`` stripped, None when unset. Raises ValueError when it is set but
    empty or blank: an empty key file must never turn the key check off."""
    raw = os.environ.get("SLML_API_KEY")
    return None if raw is None else _checked_key(raw, "SLML_API_KEY")


def _checked_key(raw: str, name: str) -> str:
    key = raw.strip()
    if not key:
        raise ValueError(
            f"{name} is set but empty: refusing to serve without the key check "
            "(set it to the key, or unset it to serve without authentication)"
        )
    return key


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None
    if value <= 0:
        raise ValueError(f"{name}={raw!r} must be positive")
    return value


class _Service:
    """The route handlers, bound to one loaded model and its limits."""

    def __init__(
        self,
        model: Any,
        *,
        max_body: int,
        max_rows: int,
        api_key: str | None,
        logger: logging.Logger,
    ) -> None:
        self.model, self.max_body, self.max_rows = model, max_body, max_rows
        self.api_key = api_key.encode() if api_key else None
        self.logger = logger
        self.policy = InlinePolicy()
        self._openapi: bytes | None = None
        self.metrics = RuntimeMetrics.for_model(model)  # slml/runtime/metrics.py, capture.py
        self.capture = self.metrics.capture = capture_from_env(model.name, self.metrics.version)

    def routes(self) -> list[Route]:
        return [
            Route("/predict", self.predict, methods=["POST"]),
            Route("/invocations", self.invocations, methods=["POST"]),
            Route("/healthz", self.health, methods=["GET"]),
            Route("/ping", self.health, methods=["GET"]),
            Route("/metadata", self.metadata, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/metrics", self.metrics_text, methods=["GET"]),
        ]

    async def predict(self, request: Request) -> Response:
        return await self._predict(request, csv=False)

    async def invocations(self, request: Request) -> Response:
        return await self._predict(request, csv=True)

    async def health(self, request: Request) -> Response:
        body = {"status": "ok", "model": self.model.name, "version": self.model.version}
        return _json(200, body)

    async def metadata(self, request: Request) -> Response:
        self._check_key(request)
        return _json(200, self.model.manifest)

    async def openapi(self, request: Request) -> Response:
        self._check_key(request)
        if self._openapi is None:
            from slml.runtime.openapi import build_openapi

            doc = build_openapi(self.model.manifest, self.model.spec, max_rows=self.max_rows)
            self._openapi = json.dumps(doc).encode()
        return Response(self._openapi, media_type="application/json")

    async def metrics_text(self, request: Request) -> Response:
        self._check_key(request)
        return Response(self.metrics.prometheus(), media_type="text/plain; version=0.0.4")

    async def _predict(self, request: Request, *, csv: bool) -> Response:
        self._check_key(request)
        is_csv = _content_kind(request.headers.get("content-type"), csv=csv) == "csv"
        body = await _read_body(request, self.max_body)
        start = time.perf_counter()
        if self.policy.inline(len(body)):  # measured to be tiny: skip the thread hop
            predictions, size = self._run(body, is_csv, request)
        else:
            predictions, size = await run_in_threadpool(self._run, body, is_csv, request)
        self.policy.observe(len(body), time.perf_counter() - start)
        request.state.batch_size = size
        out = {"predictions": predictions, "model": self.model.name, "version": self.model.version}
        if self.model.classes is not None:  # predict_proba and friends: one column per class
            out["classes"] = self.model.classes
        if self.capture is not None:
            latency = time.perf_counter() - start
            self.capture.offer(request.state.request_id, latency, body, is_csv, out)
        return _json(200, out)

    def _check_key(self, request: Request) -> None:
        if self.api_key is None:
            return
        given = request.headers.get("x-api-key", "").encode()
        if not hmac.compare_digest(given, self.api_key):
            raise RequestError(401, "unauthorized", "missing or wrong x-api-key header")

    def _run(self, body: bytes, is_csv: bool, request: Request) -> tuple[list[Any], int]:
        """Parse, validate and predict (in a worker thread: all of it is CPU work)."""
        text = _decode(body)
        payload = parse_csv(text, self.model.spec) if is_csv else _parse_json(text)
        batch = self.model.parse(payload, max_rows=self.max_rows)
        request.state.batch_size = len(batch)
        try:
            return self.model.predict(batch), len(batch)
        except RequestError:
            raise
        except _INPUT_ERRORS as exc:
            if batch.validated:
                raise
            raise RequestError(
                422, "invalid_input", f"the model rejected the input: {exc}"
            ) from exc


def _content_kind(content_type: str | None, *, csv: bool) -> str:
    """ "json" or "csv" for an accepted content type; 415 otherwise. A missing header is
    taken as JSON."""
    if not content_type:
        return "json"
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    charset = re.search(r"charset\s*=\s*\"?([\w-]+)", params, re.IGNORECASE)
    if charset and charset.group(1).lower() not in ("utf-8", "utf8"):
        raise RequestError(
            415,
            "unsupported_media_type",
            f"charset {charset.group(1)} is not supported: send UTF-8",
        )
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return "json"
    if csv and media == "text/csv":
        return "csv"
    accepted = "application/json or text/csv" if csv else "application/json"
    raise RequestError(
        415, "unsupported_media_type", f"content type {media!r} is not supported: send {accepted}"
    )


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) by Content-Length up front or once the stream passes ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise RequestError(400, "invalid_request", "Content-Length must be a whole number")
        if int(declared) > limit:
            raise _too_large(int(declared), limit)
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise _too_large(total, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> RequestError:
    return RequestError(
        413,
        "payload_too_large",
        f"the body is over the limit of {limit} bytes (got {size}+); send fewer rows per request",
    )


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(
            400, "invalid_json", f"the body is not valid UTF-8 (byte {exc.start})"
        ) from None


def _parse_json(text: str) -> Any:
    if not text.strip():
        raise RequestError(
            400, "invalid_json", 'the body is empty: expected JSON like {"instances": [[...]]}'
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestError(400, "invalid_json", "the JSON is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise RequestError(400, "invalid_json", f"the body is not usable JSON: {exc}") from None


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    content = json.dumps(body, separators=(",", ":"), allow_nan=False, default=str)
    return Response(content, status_code=status, media_type="application/json", headers=headers)


def _error(status: int, code: str, message: str, request_id: str) -> Response:
    body = {"error": {"code": code, "message": message, "request_id": request_id}}
    return _json(status, body)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = {
        404: f"no route {request.url.path}: try POST /predict, GET /healthz or GET /openapi.json",
        405: f"{request.method} is not allowed on {request.url.path}",
    }.get(exc.status_code, str(exc.detail))
    response = _error(exc.status_code, code, message, _request_id(request.scope))
    response.headers.update(exc.headers or {})  # e.g. Allow on a 405 (RFC 9110)
    return response


def _request_id(scope: Scope) -> str:
    return str(scope.get("state", {}).get("request_id", ""))


class _RequestMiddleware:
    """Request id, the concurrency limit, error bodies for RequestError and crashes, one
    JSON log line each."""

    def __init__(
        self, app: ASGIApp, logger: logging.Logger, max_concurrency: int, metrics: RuntimeMetrics
    ) -> None:
        self.app, self.logger, self.metrics = app, logger, metrics
        self.max_concurrency, self.in_flight = max_concurrency, 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state = scope.setdefault("state", {})
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = state["request_id"] = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        sent = {"status": 500, "started": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["status"], sent["started"] = message["status"], True
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())],
                }
            await send(message)

        limited = scope["path"] not in _OPEN_PATHS
        if limited and self.in_flight >= self.max_concurrency:
            await _overloaded(self.max_concurrency, rid)(scope, receive, send_with_id)
        else:
            self.in_flight += limited
            try:
                await self._serve(scope, receive, send_with_id, rid, sent)
            finally:
                self.in_flight -= limited
        status = state.get("slml_answered") or int(sent["status"])  # set by the HTTP layer
        self.metrics.observe(scope["path"], status, time.perf_counter() - start, state)
        self._log_request(scope, rid, status, start)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, rid: str, sent: dict[str, Any]
    ) -> None:
        try:
            await self.app(scope, receive, send)
        except RequestError as exc:
            scope["state"]["error_code"] = exc.code
            await _error(exc.status, exc.code, exc.message, rid)(scope, receive, send)
        except ClientDisconnect:
            sent["status"] = 499  # the client went (or the HTTP layer answered a timeout)
        except Exception as exc:
            self._log_crash(scope, rid, exc)
            scope["state"]["error_code"] = "model_error"
            if not sent["started"]:
                msg = f"the model failed on this input; request id {rid} has the details in the log"
                await _error(500, "model_error", msg, rid)(scope, receive, send)

    def _log_request(self, scope: Scope, rid: str, status: int, start: float) -> None:
        log_event(
            self.logger,
            logging.INFO,
            "request",
            request_id=rid,
            method=scope["method"],
            path=scope["path"],
            status=status,
            latency_ms=round((time.perf_counter() - start) * 1000, 2),
            batch_size=scope["state"].get("batch_size"),
        )

    def _log_crash(self, scope: Scope, rid: str, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {exc}"
        if _TRACEBACKS.check(error[:200]) is None:  # the same crash again and again
            tb = "suppressed: this error's traceback was logged in the last minute"
        else:
            tb = "".join(traceback.format_exception(exc))
        log_event(
            self.logger,
            logging.ERROR,
            "model_error",
            request_id=rid,
            path=scope["path"],
            error=error,
            traceback=tb,
        )


def _overloaded(limit: int, rid: str) -> Response:
    message = f"the server has {limit} requests in progress, its limit; retry shortly"
    response = _error(503, "overloaded", message, rid)
    response.headers["retry-after"] = "1"
    return response
