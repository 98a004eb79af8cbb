"""AWS Lambda entrypoint: Mangum around the runtime's ASGI app.

Lambda's handler setting is ``slml_handler.handler`` (a two-line module the bundle puts
at its root) or ``slml.runtime.lambda_handler.handler``. Resolving ``handler`` happens
in Lambda's init phase: it builds the app and loads the model there, once, outside the
handler, so warm invocations only predict.

It answers API Gateway HTTP API events (payload format 2.0), REST API proxy events
(1.0) and Lambda Function URL events, base64 bodies included. Bad requests get the
runtime's own 4xx JSON errors as HTTP responses, never a Lambda error.

``SLML_MODEL_DIR`` defaults to ``$LAMBDA_TASK_ROOT/model`` (the function zip's
``model/`` directory). Mangum's ASGI lifespan is off: the app loads its model eagerly.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mangum import Mangum


def default_model_dir() -> str:
    """``$LAMBDA_TASK_ROOT/model``, else ``model/`` beside the bundle's ``slml/``."""
    root = os.environ.get("LAMBDA_TASK_ROOT") or str(Path(__file__).resolve().parents[2])
    return str(Path(root) / "model")


def make_handler(app: Any) -> Callable[[Any, Any], Any]:
    """A Lambda handler ``(event, context) -> response dict`` for an ASGI app; after each
    invocation it prints the app's metrics as one CloudWatch EMF line (no API call)."""
    mangum = Mangum(app, lifespan="off")
    metrics = getattr(app.state, "metrics", None)
    if metrics is not None:
        metrics.keep_values = True  # the values of each invocation, for its EMF line

    def handler(event: Any, context: Any) -> Any:
        try:
            return mangum(event, context)
        finally:
            line = metrics.emf_line() if metrics is not None else None
            if line:
                print(line, flush=True)

    return handler


_HANDLER: Callable[[Any, Any], Any] | None = None


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

        _HANDLER = make_handler(get_app())
    return _HANDLER
