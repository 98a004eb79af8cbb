"""The one ASGI app every target serves: a plain ASGI callable, no web framework.

``create_app(model_dir)`` loads the model once, eagerly, and returns the app; ``get_app()``
is the process-wide instance built from the environment (what Lambda, Azure and
container entrypoints import at init). Routes:

    POST /predict        {"instances": [...]} or {"inputs": {...}}
                         → {"predictions": [...], "model", "version"} (+ "classes" when
                           the served method is predict_proba / decision_function)
    POST /invocations    the same, plus text/csv rows (SageMaker); with ``Accept:
                         application/jsonlines`` (Batch Transform) CSV or JSON Lines rows
                         → one line per row, ``{"prediction"}`` or ``{"error"}``
    GET  /healthz, /ping {"status": "ok", "model", "version"}
    GET  /metadata       the manifest
    GET  /openapi.json   OpenAPI 3.0.3 built from the model's signature
    GET  /metrics        Prometheus text (slml/runtime/metrics.py); SLML_CAPTURE turns on
                         captured traffic (slml/runtime/capture.py)
    (HEAD is answered on every GET route; /path/ redirects to /path with a 307)

Environment: ``SLML_MODEL_DIR``, ``SLML_MAX_BODY_BYTES`` (default 6 MiB),
``SLML_MAX_BATCH_ROWS`` (default 10000), ``SLML_MAX_CONCURRENCY`` (default 256 requests
in the app at once, health checks aside; more get a 503 ``overloaded``), ``SLML_API_KEY``
(when set, every route but /healthz and /ping needs the header ``x-api-key`` with that
value, else 401; set but empty or blank, the app refuses to start: ValueError),
``SLML_BATCH_MAX_SIZE`` / ``SLML_BATCH_MAX_LATENCY_MS`` (micro-batching, off unless
the size is set: slml/runtime/batching.py).

Errors are ``{"error": {"code", "message", "request_id"}}`` (codes in
slml/runtime/errors.py). Bad input is always a 4xx. When the model has an input
signature, the input is validated first and any exception from the model is a 500
``model_error`` (traceback in the log). Without a signature the runtime cannot tell bad
input from a broken model, so a ValueError/TypeError/OverflowError/IndexError from the
model is answered 422 ``invalid_input`` with its message; anything else is a 500.

Every request ends in ``App.finish``: its JSON log line, then the version's metrics
(slml/runtime/metrics.py), on every target (the Lambda adapter goes through it too).

The request path is written once, as coroutines that only suspend to read the body or
to wait for a worker thread: ``App.handle`` drives the same code without an event loop
(Lambda), so nothing there imports asyncio.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from slml.runtime import jsonio
from slml.runtime.batching import Batcher, batching_from_env
from slml.runtime.errors import RequestError
from slml.runtime.logs import ERROR, INFO, Logger, RateLimiter, get_logger, log_event
from slml.runtime.metrics import RuntimeMetrics
from slml.runtime.scheduling import InlinePolicy
from slml.runtime.validation import DEFAULT_MAX_ROWS, Batch, parse_csv

# Cold start: pathlib, logging, hmac (OpenSSL), uuid, traceback and the capture module's
# threads are imported where they are used, not here; on Lambda they never are (about
# 10 ms of every init; docs/PERFORMANCE.md).
if TYPE_CHECKING:  # types only: the loader is imported when a model is loaded
    from pathlib import Path
    from typing import TypeVar, TypeVarTuple

    from slml.runtime.capture import Capture
    from slml.runtime.loader import LoadedModel

    T = TypeVar("T")
    Ts = TypeVarTuple("Ts")

DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024
DEFAULT_MAX_CONCURRENCY = 256
_OPEN_PATHS = frozenset({"/healthz", "/ping"})  # health checks: no key, no concurrency limit
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
_CHARSET = re.compile(r"charset\s*=\s*\"?([\w-]+)", re.IGNORECASE)
_INPUT_ERRORS = (ValueError, TypeError, OverflowError, IndexError, KeyError)
_TRACEBACKS = RateLimiter(burst=5, window=60.0)  # per distinct error message
_JSON_HEADER = (b"content-type", b"application/json")
_INLINE_PARSE_BYTES = 64 * 1024  # batching: bodies up to this are parsed on the loop

Headers = list[tuple[bytes, bytes]]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def create_app(
    model_dir: str | Path | None = None,
    *,
    model: LoadedModel | None = None,
    max_body_bytes: int | None = None,
    max_batch_rows: int | None = None,
    api_key: str | None = None,
    max_concurrency: int | None = None,
    logger: Logger | None = None,
) -> App:
    """Load the model (unless ``model``, a LoadedModel, is given) and build the app.

    Explicit arguments win over the environment; ``logger`` defaults to the standard
    library's ``slml.runtime`` logger (``logs.get_logger``). Raises ArtifactFormatError /
    ArtifactIntegrityError when the model cannot be loaded, ValueError on a bad env value
    or an empty API key (checked before the model loads).
    """
    key = api_key_from_env() if api_key is None else _checked_key(api_key, "api_key")
    batching = batching_from_env()
    if model is None:
        from slml.runtime.loader import load

        model_dir = model_dir or os.environ.get("SLML_MODEL_DIR")
        if not model_dir:
            raise ValueError("no model: pass model_dir or set SLML_MODEL_DIR")
        model = load(model_dir)
    return App(
        model,
        max_body=max_body_bytes or _env_int("SLML_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
        max_rows=max_batch_rows or _env_int("SLML_MAX_BATCH_ROWS", DEFAULT_MAX_ROWS),
        api_key=key,
        logger=logger or get_logger(),
        max_concurrency=max_concurrency
        or _env_int("SLML_MAX_CONCURRENCY", DEFAULT_MAX_CONCURRENCY),
        batching=batching,
    )


_APP: App | None = None


def get_app(*, logger: Logger | None = None) -> App:
    """The process-wide app from the environment, created on first call (with
    ``logger``, see ``create_app``)."""
    global _APP
    if _APP is None:
        _APP = create_app(logger=logger)
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


class Disconnected(Exception):
    """The client went before its body was read (or the HTTP layer answered a timeout)."""


class Request:
    """One request as the handlers see it: lower-case header names, latin-1 values."""

    __slots__ = ("error_code", "headers", "method", "path", "request_id", "rows", "scheme")

    def __init__(self, method: str, path: str, headers: dict[str, str], scheme: str) -> None:
        self.method, self.path, self.headers, self.scheme = method, path, headers, scheme
        incoming = headers.get("x-request-id", "")
        self.request_id = incoming if _REQUEST_ID.match(incoming) else new_request_id()
        self.rows: int | None = None
        self.error_code: str | None = None  # the answer's error code, for the metrics


class Response:
    """Status, body and the headers besides content-length and x-request-id."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: Headers | None = None) -> None:
        self.status, self.body = status, body
        self.headers = headers if headers is not None else [_JSON_HEADER]

    def raw_headers(self, request_id: str) -> Headers:
        return [
            (b"content-length", str(len(self.body)).encode()),
            *self.headers,
            (b"x-request-id", request_id.encode()),
        ]


BodyReader = Callable[[int], Awaitable[bytes]]
Handler = Callable[[Request, BodyReader], Coroutine[Any, Any, Response]]


class App:
    """The ASGI app: routes, the API key, limits, error bodies and one log line per
    request. ``app.state.model`` is the LoadedModel (as ``starlette``'s apps had it)."""

    def __init__(
        self,
        model: LoadedModel,
        *,
        max_body: int,
        max_rows: int,
        api_key: str | None,
        logger: Logger,
        max_concurrency: int,
        batching: tuple[int, float] | None = None,
    ) -> None:
        self.model, self.max_body, self.max_rows = model, max_body, max_rows
        self.state = SimpleNamespace(model=model)  # .metrics added below
        self.api_key = api_key.encode() if api_key else None
        if self.api_key is not None:  # hmac only with a key: it starts OpenSSL (~3 ms)
            import hmac

            self._compare_digest = hmac.compare_digest
        self.logger, self.max_concurrency, self.in_flight = logger, max_concurrency, 0
        self.policy = InlinePolicy()
        self.metrics = RuntimeMetrics.for_model(model)  # slml/runtime/metrics.py, capture.py
        self.capture = self.metrics.capture = _capture(model.name, self.metrics.version)
        self.batcher = Batcher(self._predict_batch, *batching) if batching else None
        self._openapi: bytes | None = None
        self._health = jsonio.dumps(
            {"status": "ok", "model": model.name, "version": model.version}
        )
        self._routes: dict[str, dict[str, Handler]] = {
            "/predict": {"POST": self._predict},
            "/invocations": {"POST": self._invocations},
            "/healthz": self._get(self._healthz),
            "/ping": self._get(self._healthz),
            "/metadata": self._get(self._metadata),
            "/openapi.json": self._get(self._openapi_doc),
            "/metrics": self._get(self._metrics_text),
        }
        self.state.metrics = self.metrics

    @staticmethod
    def _get(handler: Handler) -> dict[str, Handler]:
        return {"GET": handler, "HEAD": handler}

    # ASGI ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind != "http":
            return
        start = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request = Request(scope["method"], scope["path"], headers, scope.get("scheme", "http"))
        state = scope.setdefault("state", {})
        state["request_id"] = request.request_id  # the HTTP layer's own answers use it

        async def read_body(limit: int) -> bytes:
            return await _read_body(request, receive, limit)

        response = await self.respond(request, read_body)
        if response is not None:
            await send({"type": "http.response.start", "status": response.status,
                        "headers": response.raw_headers(request.request_id)})  # fmt: skip
            body = b"" if request.method == "HEAD" else response.body
            await send({"type": "http.response.body", "body": body})
        status = state.get("slml_answered") or (response.status if response else 499)
        self.finish(request, status, start)

    # the request path, shared by every adapter ----------------------------------------

    async def respond(self, request: Request, read_body: BodyReader) -> Response | None:
        """The answer to ``request``; None when the client went away mid-body."""
        limited = request.path not in _OPEN_PATHS
        if limited and self.in_flight >= self.max_concurrency:
            return _overloaded(self.max_concurrency, request.request_id)
        self.in_flight += limited
        try:
            handler = self._route(request)
            if isinstance(handler, Response):
                return handler
            return await handler(request, read_body)
        except RequestError as exc:
            request.error_code = exc.code
            return error_response(exc.status, exc.code, exc.message, request.request_id)
        except Disconnected:
            return None
        except Exception as exc:
            self._log_crash(request, exc)
            rid = request.request_id
            msg = f"the model failed on this input; request id {rid} has the details in the log"
            request.error_code = "model_error"
            return error_response(500, "model_error", msg, rid)
        finally:
            self.in_flight -= limited

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes,
               scheme: str = "https") -> tuple[Request, Response]:  # fmt: skip
        """Answer one request without an event loop (Lambda): the body is all there and
        predictions run inline, so the coroutines finish without ever suspending. Logs
        the request (``finish``) like the ASGI path."""
        start = time.perf_counter()
        request = Request(method, path, headers, scheme)

        async def read_body(limit: int) -> bytes:
            if len(body) > limit:
                raise _too_large(len(body), limit)
            return body

        response = _run_to_end(self.respond(request, read_body))
        assert response is not None  # this body reader never disconnects
        self.finish(request, response.status, start)
        return request, response

    def finish(self, request: Request, status: int, start: float) -> None:
        """The end of every request: its JSON log line, then the version's metrics."""
        latency_ms = round((time.perf_counter() - start) * 1000, 2)
        log_event(
            self.logger,
            INFO,
            "request",
            request_id=request.request_id,
            method=request.method,
            path=request.path,
            status=status,
            latency_ms=latency_ms,
            batch_size=request.rows,
        )
        self.metrics.observe(request.path, status, latency_ms / 1000,
                             {"batch_size": request.rows, "error_code": request.error_code})

    def _route(self, request: Request) -> Handler | Response:
        methods = self._routes.get(request.path)
        if methods is None:
            stripped = request.path.rstrip("/")
            if stripped != request.path and stripped in self._routes:
                return _redirect(request, stripped)
            message = (f"no route {request.path}: try POST /predict, GET /healthz or "
                       "GET /openapi.json")  # fmt: skip
            raise RequestError(404, "not_found", message)
        handler = methods.get(request.method)
        if handler is None:
            response = error_response(405, "method_not_allowed",
                              f"{request.method} is not allowed on {request.path}",
                              request.request_id)  # fmt: skip
            response.headers.append((b"allow", ", ".join(methods).encode()))
            return response
        return handler

    # handlers -----------------------------------------------------------------------

    async def _healthz(self, request: Request, read_body: BodyReader) -> Response:
        return Response(200, self._health)

    async def _metadata(self, request: Request, read_body: BodyReader) -> Response:
        self._check_key(request)
        return Response(200, jsonio.dumps(self.model.manifest))

    async def _openapi_doc(self, request: Request, read_body: BodyReader) -> Response:
        self._check_key(request)
        if self._openapi is None:
            from slml.runtime.openapi import build_openapi

            doc = build_openapi(self.model.manifest, self.model.spec, max_rows=self.max_rows)
            self._openapi = jsonio.dumps(doc)
        return Response(200, self._openapi)

    async def _metrics_text(self, request: Request, read_body: BodyReader) -> Response:
        self._check_key(request)
        return Response(200, self.metrics.prometheus().encode(),
                        [(b"content-type", b"text/plain; version=0.0.4")])

    async def _predict(self, request: Request, read_body: BodyReader) -> Response:
        return await self._predict_any(request, read_body, csv=False)

    async def _invocations(self, request: Request, read_body: BodyReader) -> Response:
        if "application/jsonlines" in request.headers.get("accept", "").lower():
            return await self._transform(request, read_body)  # SageMaker Batch Transform
        return await self._predict_any(request, read_body, csv=True)

    async def _transform(self, request: Request, read_body: BodyReader) -> Response:
        """One answer line per row, a bad row answered in its line (runtime/batch.py)."""
        from slml.runtime.batch import TRANSFORM_MEDIA, transform_lines

        self._check_key(request)
        content_type = request.headers.get("content-type")
        media = (content_type or "").partition(";")[0].strip().lower()
        jsonl = media in (TRANSFORM_MEDIA, "application/jsonl", "application/x-ndjson") or (
            _content_kind(content_type, csv=True) == "json")
        text = _decode(await read_body(self.max_body))
        if _no_loop():
            answer = transform_lines(self.model, text, jsonl=jsonl)
        else:
            answer = await _in_thread(lambda: transform_lines(self.model, text, jsonl=jsonl))
        return Response(200, answer.encode(), [(b"content-type", TRANSFORM_MEDIA.encode())])

    async def _predict_any(self, request: Request, read_body: BodyReader, *, csv: bool
                           ) -> Response:  # fmt: skip
        self._check_key(request)
        is_csv = _content_kind(request.headers.get("content-type"), csv=csv) == "csv"
        body = await read_body(self.max_body)
        start = time.perf_counter()
        if self.batcher is not None and not _no_loop():
            predictions = await self._batched(body, is_csv, request)
        elif self.policy.inline(len(body)) or _no_loop():
            predictions = self._run(body, is_csv, request)
        else:
            predictions = await _in_thread(self._run, body, is_csv, request)
        self.policy.observe(len(body), time.perf_counter() - start)
        model = self.model
        out = {"predictions": predictions, "model": model.name, "version": model.version}
        if model.classes is not None:  # predict_proba and friends: one column per class
            out["classes"] = model.classes
        if self.capture is not None:  # queued for the writer thread: never blocks
            self.capture.offer(request.request_id, time.perf_counter() - start, body, is_csv,
                               out)
        return Response(200, jsonio.dumps(out, finite=True))

    async def _batched(self, body: bytes, is_csv: bool, request: Request) -> list[Any]:
        """Validate this request alone (its own errors), then predict its rows merged
        with other requests' (slml/runtime/batching.py)."""
        assert self.batcher is not None
        if len(body) > _INLINE_PARSE_BYTES:
            batch = await _in_thread(self._parse, body, is_csv, request)
        else:
            batch = self._parse(body, is_csv, request)
        if not batch.validated:  # raw payloads have no common shape to merge into
            return await _in_thread(self._predict_batch, batch)
        return await self.batcher.submit(batch, waiting=self.in_flight)

    def _check_key(self, request: Request) -> None:
        if self.api_key is None:
            return
        given = request.headers.get("x-api-key", "").encode()
        if not self._compare_digest(given, self.api_key):
            raise RequestError(401, "unauthorized", "missing or wrong x-api-key header")

    def _parse(self, body: bytes, is_csv: bool, request: Request) -> Batch:
        text = _decode(body)
        payload = parse_csv(text, self.model.spec) if is_csv else _parse_json(text)
        batch = self.model.parse(payload, max_rows=self.max_rows)
        request.rows = len(batch)
        return batch

    def _run(self, body: bytes, is_csv: bool, request: Request) -> list[Any]:
        """Parse, validate and predict (in a worker thread when it is not tiny)."""
        return self._predict_batch(self._parse(body, is_csv, request))

    def _predict_batch(self, batch: Batch) -> list[Any]:
        try:
            return self.model.predict(batch)
        except RequestError:
            raise
        except _INPUT_ERRORS as exc:
            if batch.validated:
                raise
            raise RequestError(
                422, "invalid_input", f"the model rejected the input: {exc}"
            ) from exc

    def _log_crash(self, request: Request, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {exc}"
        if _TRACEBACKS.check(error[:200]) is None:  # the same crash again and again
            tb = "suppressed: this error's traceback was logged in the last minute"
        else:
            import traceback

            tb = "".join(traceback.format_exception(exc))
        log_event(self.logger, ERROR, "model_error", request_id=request.request_id,
                  path=request.path, error=error, traceback=tb)  # fmt: skip


# helpers --------------------------------------------------------------------------


def new_request_id() -> str:
    """A random request id: 32 hex digits, a version 4 UUID as ``uuid.uuid4().hex``
    writes it, without importing ``uuid``."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


def _capture(model: str, version: str) -> Capture | None:
    """``capture.from_env``, imported only when ``SLML_CAPTURE`` is set (its module
    brings a writer thread's queue, random and datetime)."""
    if not os.environ.get("SLML_CAPTURE"):  # capture.ENV_VAR
        return None
    from slml.runtime.capture import from_env

    return from_env(model, version)


def _no_loop() -> bool:
    """True outside an event loop (``App.handle``): predictions then run inline."""
    import sys

    aio = sys.modules.get("asyncio")
    return aio is None or aio._get_running_loop() is None


async def _in_thread(fn: Callable[[*Ts], T], *args: *Ts) -> T:
    import asyncio

    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def _run_to_end(coro: Coroutine[Any, Any, Any]) -> Any:
    """Drive a coroutine that never suspends, without an event loop."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("the request path suspended outside an event loop")


async def _lifespan(receive: Receive, send: Send) -> None:
    """The model is loaded eagerly: startup and shutdown have nothing to do."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _content_kind(content_type: str | None, *, csv: bool) -> str:
    """ "json" or "csv" for an accepted content type; 415 otherwise. A missing header is
    taken as JSON."""
    if not content_type:
        return "json"
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    charset = _CHARSET.search(params) if params else None
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


async def _read_body(request: Request, receive: Receive, limit: int) -> bytes:
    """The body, refusing (413) by Content-Length up front or once the stream passes ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise RequestError(400, "invalid_request", "Content-Length must be a whole number")
        if int(declared) > limit:
            raise _too_large(int(declared), limit)
    chunks, total = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected()
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise _too_large(total, limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


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
        return jsonio.loads(text)
    except RecursionError:
        raise RequestError(400, "invalid_json", "the JSON is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise RequestError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise RequestError(400, "invalid_json", f"the body is not usable JSON: {exc}") from None


def error_response(status: int, code: str, message: str, request_id: str) -> Response:
    body = {"error": {"code": code, "message": message, "request_id": request_id}}
    return Response(status, jsonio.dumps(body))


def _redirect(request: Request, path: str) -> Response:
    host = request.headers.get("host", "localhost")
    location = f"{request.scheme}://{host}{path}".encode("latin-1")
    return Response(307, b"", [(b"location", location)])


def _overloaded(limit: int, rid: str) -> Response:
    message = f"the server has {limit} requests in progress, its limit; retry shortly"
    response = error_response(503, "overloaded", message, rid)
    response.headers.append((b"retry-after", b"1"))
    return response
