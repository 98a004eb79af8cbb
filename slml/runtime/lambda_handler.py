"""AWS Lambda entrypoint: API Gateway and Function URL events answered by the runtime's
app directly, with no ASGI adapter and no event loop.

Lambda's handler setting is ``slml_handler.handler`` (a two-line module the bundle puts
at its root) or ``slml.runtime.lambda_handler.handler``. Resolving ``handler`` happens
in Lambda's init phase: it builds the app and loads the model there, once, outside the
handler, so warm invocations only predict.

It answers API Gateway HTTP API events (payload format 2.0), REST API proxy events
(1.0) and Lambda Function URL events (2.0), base64 bodies included, with the response
shapes Mangum gave them (the adapter this replaces): for 2.0 ``statusCode``, ``headers``
(repeated names joined by commas, ``set-cookie`` as ``cookies``), ``body``,
``isBase64Encoded``; for 1.0 ``headers`` and ``multiValueHeaders``. Bodies of JSON and
text types are sent as text, anything else base64. Bad requests get the runtime's own
4xx JSON errors as HTTP responses, never a Lambda error; an event that is none of these
is a 400 ``invalid_request``.

Why not Mangum around the ASGI app: importing Starlette, anyio and Mangum (and asyncio
under them) cost about 150 ms of every cold start, and the app's request path runs
without them (``App.handle``): the same routes, validation, errors and log lines. For
the same reason the log lines go to stderr through ``logs.LineLogger`` (not the
standard library's ``logging``), and ``base64`` / ``urllib.parse`` are imported only
for an event that needs them.

``SLML_MODEL_DIR`` defaults to ``$LAMBDA_TASK_ROOT/model`` (the function zip's
``model/`` directory).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # types only: the app is imported when the handler is first built
    from slml.runtime.app import App, Response

TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml",
              "application/vnd.api+json", "application/vnd.oai.openapi")  # fmt: skip
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def default_model_dir() -> str:
    """``$LAMBDA_TASK_ROOT/model``, else ``model/`` beside the bundle's ``slml/``."""
    here = os.path.dirname(os.path.realpath(__file__))  # <root>/slml/runtime
    root = os.environ.get("LAMBDA_TASK_ROOT") or os.path.dirname(os.path.dirname(here))
    return os.path.join(root, "model")


def make_handler(app: App) -> LambdaHandler:
    """A Lambda handler ``(event, context) -> response dict`` for the runtime's App;
    after each invocation it prints the app's metrics as one CloudWatch EMF line (no
    API call)."""
    metrics = app.metrics
    metrics.keep_values = True  # the values of each invocation, for its EMF line
    register_restore_hooks(app)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        del context  # the request id comes from x-request-id, as on every target
        try:
            parsed = parse_event(event)
            if parsed is None:
                return _reply(*_bad_event(), v2=False)
            method, path, headers, body = parsed
            scheme = headers.get("x-forwarded-proto", "https")
            request, response = app.handle(method, path, headers, body, scheme)
            return _reply(response, request.request_id, v2=event.get("version") == "2.0")
        finally:
            line = metrics.emf_line()
            if line:
                print(line, flush=True)

    return handler


def register_restore_hooks(app: App) -> bool:
    """With SnapStart, Lambda snapshots the environment after init (the model loaded)
    and starts many environments from that one snapshot. Lambda's managed runtime
    provides ``snapshot_restore_py``; where it does, ``after_restore`` runs in each
    restored environment. Returns whether the hook was registered (False elsewhere)."""
    try:
        from snapshot_restore_py import register_after_restore
    except ImportError:
        return False
    register_after_restore(lambda: after_restore(app))
    return True


def after_restore(app: App) -> None:
    """What each environment restored from a snapshot must not share with the others:
    the random generators' state (reseeded from the OS: Python's, and NumPy's and
    torch's global ones when the model imported them) and the capture sink's file or
    object names. Network clients reconnect on their own (botocore retries a dropped
    pooled connection); nothing else here holds a connection."""
    import random
    import sys

    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.seed()
    if app.capture is not None:
        app.capture.after_restore()


def parse_event(event: Any) -> tuple[str, str, dict[str, str], bytes] | None:
    """(method, path, lower-case headers, body) of an API Gateway / Function URL event;
    None when the event is not one."""
    if not isinstance(event, dict) or not isinstance(event.get("requestContext"), dict):
        return None
    context = event["requestContext"]
    if event.get("version") == "2.0":
        http = context.get("http") or {}
        method, path = http.get("method"), http.get("path")
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        if event.get("cookies"):
            headers["cookie"] = "; ".join(event["cookies"])
    elif "httpMethod" in event:
        method, path = event["httpMethod"], event.get("path")
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        for name, values in (event.get("multiValueHeaders") or {}).items():
            headers[name.lower()] = ", ".join(values) if isinstance(values, list) else ""
    else:
        return None
    if not isinstance(method, str):
        return None
    raw = event.get("body") or b""
    if event.get("isBase64Encoded", False):
        import base64

        body = base64.b64decode(raw)
    else:
        body = raw if isinstance(raw, bytes) else raw.encode()
    return method, _unquote(path) if path else "/", headers, body


def _unquote(path: str) -> str:
    """``urllib.parse.unquote``, imported only for a path with an escape in it."""
    if "%" not in path:
        return path
    from urllib.parse import unquote

    return unquote(path)


def _bad_event() -> tuple[Any, str]:
    from slml.runtime.app import error_response, new_request_id

    rid = new_request_id()
    message = ("not an API Gateway (REST or HTTP API) or Function URL event: "
               "invoke the function through its HTTP endpoint")  # fmt: skip
    return error_response(400, "invalid_request", message, rid), rid


def _reply(response: Response, request_id: str, *, v2: bool) -> dict[str, Any]:
    headers: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    cookies: list[str] = []
    for raw_name, raw_value in response.raw_headers(request_id):
        name, value = raw_name.decode().lower(), raw_value.decode()
        if v2:
            if name == "set-cookie":
                cookies.append(value)
            else:
                headers[name] = f"{headers[name]},{value}" if name in headers else value
        elif name in multi:
            multi[name].append(value)
        elif name in headers:
            multi[name] = [headers.pop(name), value]
        else:
            headers[name] = value
    body, b64 = _body(response.body, headers.get("content-type", ""))
    out: dict[str, Any] = {"statusCode": response.status}
    if v2:
        out.update(body=body, headers=headers or None, cookies=cookies or None,
                   isBase64Encoded=b64)  # fmt: skip
        return {k: v for k, v in out.items() if v is not None}
    out.update(headers=headers, multiValueHeaders=multi, body=body, isBase64Encoded=b64)
    return out


def _body(body: bytes, content_type: str) -> tuple[str, bool]:
    if not body:
        return "", False
    if any(kind in content_type for kind in TEXT_TYPES):
        try:
            return body.decode(), False
        except UnicodeDecodeError:
            pass
    import base64

    return base64.b64encode(body).decode(), True


_HANDLER: LambdaHandler | None = None


def __getattr__(name: str) -> Any:
    """``handler`` is built on first access: Lambda's bootstrap resolves it while it
    initialises the function (and ``slml_handler.py`` imports it at module level), so
    the model loads during init. Importing this module alone loads nothing."""
    global _HANDLER
    if name != "handler":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _HANDLER is None:
        os.environ.setdefault("SLML_MODEL_DIR", default_model_dir())
        from slml.runtime.app import get_app
        from slml.runtime.logs import LineLogger

        _HANDLER = make_handler(get_app(logger=LineLogger()))
    return _HANDLER
