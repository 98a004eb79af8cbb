"""The one polling cursor: inclusive since, no entry shown twice, the newest spelling."""

from __future__ import annotations

import itertools

from slml.providers.log_cursor import LogCursor, follow


def cursor(since: str | None = None) -> LogCursor:
    return LogCursor(stamp=lambda e: e.get("t"), ident=lambda e: e["id"], since=since)


def test_entries_at_the_boundary_are_shown_once():
    at = cursor()
    first = [{"id": 1, "t": "2024-05-01T10:00:01Z"}, {"id": 2, "t": "2024-05-01T10:00:02.5Z"}]
    at.advance(first)
    assert at.since == "2024-05-01T10:00:02.5Z" and at.seen == {2}
    again = [{"id": 2, "t": "2024-05-01T10:00:02.5Z"}, {"id": 3, "t": "2024-05-01T10:00:02.500Z"}]
    assert at.fresh(again) == [again[1]]
    at.advance(at.fresh(again))
    assert at.since == "2024-05-01T10:00:02.500Z" and at.seen == {2, 3}  # one instant
    at.advance([{"id": 4, "t": "2024-05-01T10:00:03Z"}])
    assert at.seen == {4}  # a newer instant forgets the older ids


def test_entries_without_a_stamp_leave_the_cursor_where_it_was():
    at = cursor("2024-05-01T10:00:00Z")
    at.advance([{"id": 1}])
    assert at.since == "2024-05-01T10:00:00Z" and at.seen == set()


def test_follow_polls_from_the_cursor_and_yields_fresh_entries():
    polls = iter([[{"id": 1, "t": "2024-05-01T10:00:01Z"}], [], [{"id": 1, "t":
                  "2024-05-01T10:00:01Z"}, {"id": 2, "t": "2024-05-01T10:00:01Z"}]])  # fmt: skip
    asked: list[str | None] = []
    sleeps: list[float] = []

    def poll(at: LogCursor) -> list[dict]:
        asked.append(at.since)
        return next(polls)

    stream = follow(cursor(), poll, lambda e: str(e["id"]), sleep=sleeps.append, interval=2)
    assert list(itertools.islice(stream, 2)) == ["1", "2"]
    assert asked == [None, "2024-05-01T10:00:01Z", "2024-05-01T10:00:01Z"] and sleeps == [2] * 3
