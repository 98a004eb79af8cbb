"""HTTP/1.1 connections under uvicorn: its protocols plus the limits they lack.

``protocol_class(limits, cap)`` returns a protocol class for ``uvicorn.Config(http=...)``:
a subclass of uvicorn's ``HttpToolsProtocol`` (the C parser, llhttp) when httptools is
installed and ``limits.parser`` allows it, else of its pure-Python ``H11Protocol``. Both
get the same limits from ``_Guarded``; each lives in its own module
(``protocol_h11``, ``protocol_httptools``), so only the chosen parser is imported. On top
of uvicorn they

- close a connection idle for ``idle_timeout`` (uvicorn does so only after a first
  response; here a fresh connection that never sends anything is closed too);
- answer 408 when a request's head is not complete ``header_timeout`` after its first
  byte, or its body ``body_timeout`` after the head;
- answer 414 / 431 when the request line / head is over its limit, checked on the
  unparsed head bytes before the parser sees them (h11's buffer; for httptools, the
  bytes of the head in progress), so the limit holds however TCP splits reads;
- keep at most ``cap`` connections open: over it the connection idle the longest is
  closed, or, none being idle, the newcomer gets a 503;
- close gracefully after an answer sent before the request was read to its end (413,
  408, 431, ...): half-close, then read and discard what the client still sends, up to
  ``linger_bytes`` / ``linger_seconds``. Closing with unread data makes the kernel send
  a reset, and the client then loses the answer.

Its own answers are the runtime's JSON errors with an ``x-request-id``. Each protocol
reports where its request stands as a phase (``IDLE``, ``HEAD``, ``BODY``, ``WAIT``,
``ERROR``); everything else is shared. Not thread-safe: everything runs on the event loop.
"""

from __future__ import annotations

import asyncio
import http
import logging
import re
import uuid
from typing import TYPE_CHECKING, Any, ClassVar, cast

from slml.runtime.errors import error_body
from slml.runtime.limits import Limits
from slml.runtime.logs import get_logger, log_event

_HEAD_END = re.compile(rb"\n\r?\n")
_LOGGER = get_logger()
SHUTDOWN_LINGER_SECONDS = 0.5


class _Registry:
    """The live connections of one server; the idle ones in the order they went idle."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.live: set[_Guarded] = set()
        self.idle: dict[_Guarded, None] = {}

    def mark_idle(self, conn: _Guarded) -> None:
        self.idle.pop(conn, None)
        self.idle[conn] = None

    def forget(self, conn: _Guarded) -> None:
        self.live.discard(conn)
        self.idle.pop(conn, None)

    def oldest_idle(self, besides: _Guarded) -> _Guarded | None:
        return next((c for c in self.idle if c is not besides), None)


def protocol_class(limits: Limits, cap: int) -> type[_Guarded]:
    """A protocol class for one server: ``limits`` and one connection registry, on the
    parser ``limits.parser`` names (``auto``: httptools when installed, else h11)."""
    base: type[_Guarded]
    if parser_name(limits.parser) == "httptools":  # only the chosen parser is imported
        from slml.runtime.protocol_httptools import SlmlHttpToolsProtocol

        base = SlmlHttpToolsProtocol
    else:
        from slml.runtime.protocol_h11 import SlmlH11Protocol

        base = SlmlH11Protocol
    attrs = {"limits": limits, "registry": _Registry(cap)}
    return type(base.__name__, (base,), attrs)


def parser_name(setting: str) -> str:
    """``h11`` or ``httptools`` for a ``limits.parser`` setting; ValueError when
    httptools is asked for and not installed."""
    import importlib.util

    installed = importlib.util.find_spec("httptools") is not None
    if setting == "httptools" and not installed:
        raise ValueError("SLML_HTTP=httptools but httptools is not installed")
    return "httptools" if setting != "h11" and installed else "h11"


def error_response(status: int, code: str, message: str, request_id: str) -> bytes:
    """A complete HTTP/1.1 response with the JSON error body, closing the connection."""
    body = error_body(code, message, request_id)
    head = [
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
        f"x-request-id: {request_id}",
        *(["retry-after: 1"] if status == 503 else []),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def head_error(pending: bytes, limits: Limits) -> tuple[int, str, str] | None:
    """(status, code, message) when the unparsed request head ``pending`` is over a
    limit, complete or not; None when it is within them."""
    data = pending.lstrip(b"\r\n")
    line_end = data.find(b"\n", 0, limits.max_request_line + 2)
    line = len(data) if line_end < 0 else len(data[:line_end].rstrip(b"\r"))
    if line > limits.max_request_line:
        return 414, "uri_too_long", f"the request line is over {limits.max_request_line} bytes"
    end = _HEAD_END.search(data, 0, limits.max_header_bytes + 4)
    size = len(data) if end is None else end.start()
    if size > limits.max_header_bytes:
        message = f"the request head is over {limits.max_header_bytes} bytes"
        return 431, "headers_too_large", message
    return None


class _Transport:
    """The transport as uvicorn sees it: ``close()`` goes through the protocol, which
    lingers when the client may still be sending."""

    def __init__(self, transport: asyncio.Transport, protocol: _Guarded) -> None:
        self._transport, self._protocol = transport, protocol
        # what the response path calls for every request, bound once (no __getattr__)
        self.write, self.is_closing = transport.write, transport.is_closing

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def close(self) -> None:
        self._protocol.close_connection()


# where the request on a connection stands, as each protocol reports it
IDLE = "idle"  # between requests, nothing of the next one received
HEAD = "head"  # part of a request head received
BODY = "body"  # head complete, the body still arriving
WAIT = "wait"  # request read whole; its response pending (or the connection closing)
ERROR = "error"  # the parser refused the bytes


class _Guarded:
    """The limits, on top of one of uvicorn's HTTP/1.1 protocols (listed before it in
    a subclass's bases: these methods run first and reach uvicorn's through
    ``super()``). A subclass says where its request stands (``_phase``), whether the
    response just completed left its request unread (``_request_unread``) and checks
    the head before its parser sees it."""

    limits: ClassVar[Limits]
    registry: ClassVar[_Registry]
    # from uvicorn's protocol, which this class is mixed into
    loop: asyncio.AbstractEventLoop
    cycle: Any
    flow: Any
    server_state: Any
    timeout_keep_alive: int
    timeout_keep_alive_task: asyncio.TimerHandle | None
    if TYPE_CHECKING:

        def timeout_keep_alive_handler(self) -> None: ...
        def _unset_keepalive_if_required(self) -> None: ...

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._raw: asyncio.Transport | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._deadline_kind = ""
        self._lingering = False
        self._linger_seconds = self.limits.linger_seconds
        self._drained = 0

    def _phase(self) -> str:
        raise NotImplementedError

    def _request_unread(self) -> bool:
        raise NotImplementedError

    # connection life -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvicorn's protocols take no other); uvicorn gets a proxy
        # of it (_Transport, duck-typed)
        raw = cast(asyncio.Transport, transport)
        self._raw = raw
        super().connection_made(_Transport(raw, self))  # type: ignore[misc]
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )
        self.registry.live.add(self)
        self.registry.mark_idle(self)
        if len(self.registry.live) > self.registry.cap:
            self._make_room()

    def _make_room(self) -> None:
        victim = self.registry.oldest_idle(besides=self)
        if victim is not None:
            victim.abort()
            return
        message = "the server is at its connection limit; retry shortly"
        self._answer(503, "overloaded", message)

    def abort(self) -> None:
        """Close now, sending nothing (an idle connection making room)."""
        self.registry.forget(self)
        self._cancel_deadline()
        if self._raw is not None:
            self._raw.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.registry.forget(self)
        self._cancel_deadline()
        super().connection_lost(exc)  # type: ignore[misc]

    def close_connection(self) -> None:
        """Close; linger first when the client may still be sending the request."""
        raw = self._raw
        if raw is None or raw.is_closing() or self._lingering:
            return
        if self._phase() in (HEAD, BODY, ERROR):
            self._linger()
        else:
            self.registry.forget(self)
            raw.close()

    def _linger(self) -> None:
        raw = self._raw
        assert raw is not None
        self._lingering = True
        self.registry.idle.pop(self, None)  # still counted as live: it holds a descriptor
        self._unset_keepalive_if_required()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app may not write any more
            self.cycle.message_event.set()
        self.flow.resume_reading()
        if raw.can_write_eof():
            raw.write_eof()  # after the buffered answer: the client reads it, then EOF
        self._arm("linger", self._linger_seconds)

    def shutdown(self) -> None:
        """Graceful server shutdown: lingering is cut to ``SHUTDOWN_LINGER_SECONDS``."""
        self._linger_seconds = min(self._linger_seconds, SHUTDOWN_LINGER_SECONDS)
        if self._lingering:
            self._arm("linger", self._linger_seconds)
        else:
            super().shutdown()  # type: ignore[misc]

    # reading ---------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._drained += len(data)
            if self._drained > self.limits.linger_bytes and self._raw is not None:
                self._raw.close()
            return
        reading_head = self._phase() in (IDLE, HEAD)
        super().data_received(data)  # type: ignore[misc]
        self._track_request(reading_head)

    def _track_request(self, reading_head: bool) -> None:
        """Move the deadline and the idle mark along with the request's progress."""
        if self._lingering or self._raw is None or self._raw.is_closing():
            return
        phase = self._phase()
        if phase in (IDLE, HEAD):
            if reading_head and self._deadline_kind != "header":
                self._arm("header", self.limits.header_timeout)
            return
        self.registry.idle.pop(self, None)
        if phase == BODY:
            if self._deadline_kind != "body":
                self._arm("body", self.limits.body_timeout)
        else:
            self._cancel_deadline()

    def on_response_complete(self) -> None:
        if self._request_unread():  # answered before the body was read
            self.server_state.total_requests += 1
            self.close_connection()
            return
        super().on_response_complete()  # type: ignore[misc]
        if self._lingering or self._raw is None or self._raw.is_closing():
            return
        self._cancel_deadline()
        phase = self._phase()
        if phase in (IDLE, HEAD):
            self.registry.mark_idle(self)
            self._track_request(reading_head=phase == HEAD)
        else:
            self._track_request(reading_head=False)

    # answers and deadlines -------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        del msg  # uvicorn's generic text; the JSON answer says the same
        self._answer(400, "invalid_http", "the request is not valid HTTP/1.1")

    def _answer(self, status: int, code: str, message: str) -> None:
        """Answer with a JSON error (unless a response already started), then linger
        and close: the client gets to read the answer."""
        raw = self._raw
        if raw is None or raw.is_closing() or self._lingering:
            return
        cycle = self.cycle
        in_request = cycle is not None and not cycle.response_complete
        rid = self._request_id()
        if in_request:
            cycle.scope["state"]["slml_answered"] = status
        if not (in_request and cycle.response_started):
            raw.write(error_response(status, code, message, rid))
        log_event(
            _LOGGER,
            logging.WARNING,
            code,
            limit=code,
            status=status,
            request_id=rid,
            message=message,
        )
        self._linger()

    def _request_id(self) -> str:
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            rid = cycle.scope.get("state", {}).get("request_id")
            if rid:
                return str(rid)
        return uuid.uuid4().hex

    def _arm(self, kind: str, seconds: float) -> None:
        self._cancel_deadline()
        self._deadline_kind = kind
        self._deadline = self.loop.call_later(seconds, self._on_deadline)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline, self._deadline_kind = None, ""

    def _on_deadline(self) -> None:
        kind = self._deadline_kind
        self._deadline, self._deadline_kind = None, ""
        if kind == "linger":
            if self._raw is not None:
                self._raw.close()
            return
        seconds = self.limits.header_timeout if kind == "header" else self.limits.body_timeout
        part = "head" if kind == "header" else "body"
        self._answer(
            408, "request_timeout", f"the request {part} did not arrive within {seconds:g} s"
        )
