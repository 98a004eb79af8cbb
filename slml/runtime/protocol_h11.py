"""The connection limits of ``slml.runtime.protocol`` on uvicorn's pure-Python h11
protocol: the fallback where httptools is not installed (or ``SLML_HTTP=h11``). The
head is checked on h11's own buffer of unparsed bytes before h11 parses it; the phase
is h11's state of the client's side."""

from __future__ import annotations

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from slml.runtime.protocol import BODY, ERROR, HEAD, IDLE, WAIT, _Guarded, head_error


class SlmlH11Protocol(_Guarded, H11Protocol):
    """The limits on uvicorn's pure-Python h11 protocol."""

    def _phase(self) -> str:
        state = self.conn.their_state
        if state is h11.IDLE:
            return HEAD if self.conn.trailing_data[0] else IDLE
        if state is h11.SEND_BODY:
            return BODY
        return ERROR if state is h11.ERROR else WAIT

    def _request_unread(self) -> bool:
        return self.conn.their_state is h11.SEND_BODY

    def handle_events(self) -> None:
        pending = self.conn.trailing_data[0] if self.conn.their_state is h11.IDLE else b""
        if pending:
            problem = head_error(pending, self.limits)
            if problem is not None:
                self._answer(*problem)
                return
        super().handle_events()
