"""A small Lambda Runtime API server, on 127.0.0.1, for awslambdaric in a container.

Implements what a Python runtime calls (docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html):

- ``GET  /2018-06-01/runtime/invocation/next``: blocks until ``invoke`` queues an event,
  answers it with the ``Lambda-Runtime-*`` headers (request id, deadline, function ARN,
  trace id);
- ``POST /2018-06-01/runtime/invocation/{id}/response`` and ``.../error``: the result;
- ``POST /2018-06-01/runtime/init/error``: the function failed to initialise.

``first_next_at`` (monotonic) is when the runtime first asked for work: the end of its
init phase. Everything is kept for the test to assert on.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:slml-test"


@dataclass
class Result:
    kind: str  # "response" or "error"
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class RuntimeApi:
    """Start with ``start()``, stop with ``close()``; ``address`` is host:port."""

    def __init__(self) -> None:
        self._events: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._results: dict[str, Result] = {}
        self._done = threading.Condition()
        self.init_errors: list[Any] = []
        self.first_next_at: float | None = None
        self.requests: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> RuntimeApi:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def invoke(self, event: dict, *, timeout: float = 120) -> Result:
        """Queue ``event`` for the runtime and wait for its response or error."""
        request_id = str(uuid.uuid4())
        self._events.put((request_id, json.dumps(event).encode()))
        deadline = time.monotonic() + timeout
        with self._done:
            while request_id not in self._results:
                left = deadline - time.monotonic()
                if left <= 0 or self.init_errors:
                    raise TimeoutError(f"no result for {request_id} within {timeout} s"
                                       + (f"; init error: {self.init_errors}" if self.init_errors
                                          else ""))  # fmt: skip
                self._done.wait(min(left, 0.5))
            return self._results.pop(request_id)

    def wait_init_error(self, *, timeout: float = 120) -> Any:
        deadline = time.monotonic() + timeout
        with self._done:
            while not self.init_errors:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no init error reported within {timeout} s")
                self._done.wait(min(left, 0.5))
            return self.init_errors[0]

    def wait_ready(self, *, timeout: float = 300) -> float:
        """Wait until the runtime asks for its first event; returns that moment."""
        deadline = time.monotonic() + timeout
        with self._done:
            while self.first_next_at is None:
                left = deadline - time.monotonic()
                if left <= 0 or self.init_errors:
                    raise TimeoutError(f"the runtime did not ask for an event within {timeout}"
                                       f" s; init errors: {self.init_errors}")  # fmt: skip
                self._done.wait(min(left, 0.5))
            return self.first_next_at

    def _record(self, request_id: str | None, result: Result | None, init_error: Any = None):
        with self._done:
            if result is not None and request_id is not None:
                self._results[request_id] = result
            if init_error is not None:
                self.init_errors.append(init_error)
            self._done.notify_all()

    def _next(self) -> tuple[str, bytes]:
        with self._done:
            if self.first_next_at is None:
                self.first_next_at = time.monotonic()
            self._done.notify_all()
        return self._events.get()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _reply(self, status: int, body: bytes = b"{}", headers: dict | None = None):
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self) -> None:
                api.requests.append(f"GET {self.path}")
                if self.path != f"{PREFIX}/invocation/next":
                    return self._reply(404, b'{"errorType": "NotFound"}')
                request_id, body = api._next()
                deadline = int(time.time() * 1000) + 300_000
                trace = f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}"
                self._reply(200, body, {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline),
                    "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                    "Lambda-Runtime-Trace-Id": trace,
                })  # fmt: skip

            def do_POST(self) -> None:
                api.requests.append(f"POST {self.path}")
                body = self._body()
                parts = self.path.removeprefix(PREFIX).strip("/").split("/")
                headers = {k: v for k, v in self.headers.items()}
                if parts == ["init", "error"]:
                    api._record(None, None, init_error=_json(body))
                elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in (
                    "response", "error"
                ):
                    api._record(parts[1], Result(parts[2], _json(body), headers))
                else:
                    return self._reply(404, b'{"errorType": "NotFound"}')
                self._reply(202, b'{"status": "OK"}')

        return Handler


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode(errors="replace")
