"""Following a cloud's log by polling, one way for every target that queries its logs
with an inclusive "since" (Cloud Logging, Azure Log Analytics).

A ``LogCursor`` remembers the newest timestamp seen and the ids already shown at that
instant: the next poll asks from that timestamp on (inclusive, since several entries
may share an instant) and ``fresh`` drops what was shown. ``follow`` is the polling
loop around it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterator
from datetime import datetime
from typing import Any

Entry = dict[str, Any]
_TS = re.compile(r"^(?P<base>[^.]+?)(?:\.(?P<frac>\d+))?(?P<zone>Z|[+-]\d\d:\d\d)$")


def timestamp_key(stamp: str) -> tuple[float, int]:
    """A sortable key of an RFC 3339 timestamp with 0-9 fractional digits."""
    match = _TS.match(stamp)
    if match is None:
        return (0.0, 0)
    base = datetime.fromisoformat(match["base"] + match["zone"].replace("Z", "+00:00"))
    return (base.timestamp(), int((match["frac"] or "0").ljust(9, "0")[:9]))


class LogCursor:
    """Where the next poll starts. ``stamp`` and ``ident`` read an entry's timestamp
    (RFC 3339, or None) and its id; ``since`` is None until an entry has been seen,
    unless a start (e.g. the clock) is given."""

    def __init__(
        self, *, stamp: Callable[[Entry], str | None], ident: Callable[[Entry], Hashable],
        since: str | None = None,
    ) -> None:  # fmt: skip
        self.since = since
        self.seen: set[Hashable] = set()
        self._stamp = stamp
        self._ident = ident

    def fresh(self, entries: list[Entry]) -> list[Entry]:
        """``entries`` without those already shown."""
        return [e for e in entries if self._ident(e) not in self.seen]

    def advance(self, entries: list[Entry]) -> None:
        """Move to the newest timestamp among ``entries`` (spelled as the newest entry
        spells it) and remember the ids shown at that instant."""
        stamped = [(stamp, e) for e in entries if (stamp := self._stamp(e))]
        if not stamped:
            return
        newest = max(stamped, key=lambda pair: timestamp_key(pair[0]))[0]
        key = timestamp_key(newest)
        if self.since is None or key != timestamp_key(self.since):
            self.seen = set()
        self.since = newest
        self.seen |= {self._ident(e) for stamp, e in stamped if timestamp_key(stamp) == key}


def follow(
    cursor: LogCursor, poll: Callable[[LogCursor], list[Entry]], render: Callable[[Entry], str],
    *, sleep: Callable[[float], None], interval: float,
) -> Iterator[str]:  # fmt: skip
    """Forever: wait ``interval``, ``poll`` from the cursor, yield the fresh entries
    rendered, advance. Ends when the consumer stops iterating."""
    while True:
        sleep(interval)
        new = cursor.fresh(poll(cursor))
        yield from (render(e) for e in new)
        cursor.advance(new)
