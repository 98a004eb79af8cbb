"""The connection limits of ``slml.runtime.protocol`` on uvicorn's httptools protocol
(llhttp, in C): imported only when httptools is installed and chosen.

httptools parses as bytes arrive and keeps no buffer of its own to check, so the head
of the request in progress is kept here until it is complete and checked against the
limits before the parser sees new bytes (``head_error``, as for h11): exact however the
bytes arrive. One case is counted instead: a pipelined request whose head began in the
same read that ended the request before it (where it began is not known). Its bytes
from the next read on count against ``max_header_bytes`` (431), so memory stays bounded
and the limit holds to within one read.

The phase follows the parser's callbacks; with pipelined requests it is the newest
request's, and a response completing before its own request was read whole is told
apart by counting requests read against responses completed.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from slml.runtime.protocol import BODY, ERROR, HEAD, IDLE, WAIT, _Guarded, head_error


class SlmlHttpToolsProtocol(_Guarded, HttpToolsProtocol):
    """The limits on uvicorn's httptools protocol."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._state = IDLE
        self._head = b""  # the head in progress, as received
        self._counted: int | None = None  # its size when only counted (see the module doc)
        self._read = 0  # requests read whole
        self._answered = 0  # responses completed

    def _phase(self) -> str:
        if self._state == IDLE and self._head:
            return HEAD
        return self._state

    def _request_unread(self) -> bool:
        return self._answered > self._read

    def data_received(self, data: bytes) -> None:
        if self._lingering or self._state not in (IDLE, HEAD):
            read = self._read
            super().data_received(data)
            self._after(read, b"")
            return
        head = b""
        if self._counted is None:
            head = self._head + data if self._head else data
            problem = head_error(head, self.limits)
        else:
            self._counted += len(data)
            problem = None
            if self._counted > self.limits.max_header_bytes:
                message = f"the request head is over {self.limits.max_header_bytes} bytes"
                problem = (431, "headers_too_large", message)
        if problem is not None:
            self._answer(*problem)
            return
        read = self._read
        super().data_received(data)
        self._after(read, head)

    def _after(self, read_before: int, head: bytes) -> None:
        """After the parser took a read: keep the head still in progress, if any."""
        if self._lingering or self._state not in (IDLE, HEAD):
            self._head, self._counted = b"", None
        elif self._read > read_before:  # a request ended in this read
            self._head = b""
            self._counted = 0 if self._state == HEAD else None
        elif self._counted is None:
            self._head = head

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._state = HEAD

    def on_headers_complete(self) -> None:
        self._state = BODY
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._read += 1
        self._state = WAIT
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._answered += 1
        if self._state == WAIT and self._answered == self._read:
            self._state = IDLE
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        self._state = ERROR
        super().send_400_response(msg)
