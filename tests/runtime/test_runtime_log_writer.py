"""The serving runtime's log lines leave the event loop through one writer thread,
written in batches, in order, nothing lost at stop."""

from __future__ import annotations

import io
import logging

from slml.runtime.log_handlers import (
    LineWriter,
    _StderrHandler,
    install_line_writer,
    uninstall_line_writer,
)
from slml.runtime.logs import get_logger, log_event


class Writes(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def write(self, text: str) -> int:
        self.calls += 1
        return super().write(text)


def test_queued_lines_are_written_in_batches_and_all_at_stop() -> None:
    out = Writes()
    writer = LineWriter(lambda: out)
    for n in range(2000):
        writer.put(f"line {n}")
    writer.stop()
    assert out.getvalue().splitlines() == [f"line {n}" for n in range(2000)]
    assert out.calls < 2000 / 4  # batches: far fewer writes than lines


def test_the_runtime_logger_goes_through_it_in_order(monkeypatch) -> None:
    logger = get_logger()
    default = _StderrHandler()
    default.setFormatter(logging.Formatter("%(message)s"))
    monkeypatch.setattr(logger, "handlers", [default])  # as a fresh server has it; restored
    out = Writes()
    monkeypatch.setattr("sys.stderr", out)
    writer = install_line_writer(logger)
    assert writer is not None
    try:
        log_event(logger, logging.INFO, "request", status=200, request_id="a")
        logger.warning("a warning through logging's own path")
        log_event(logger, logging.INFO, "request", status=422, request_id="b")
        log_event(logger, logging.DEBUG, "below the level: dropped")
    finally:
        uninstall_line_writer(logger, writer)
    lines = out.getvalue().splitlines()
    assert [line[:1] for line in lines] == ["{", "a", "{"]
    assert '"request_id":"a"' in lines[0] and '"status":422' in lines[2]
    log_event(logger, logging.INFO, "after", n=1)  # the stderr handler is back
    assert out.getvalue().splitlines()[-1].endswith('"event":"after","n":1}')


def test_a_logger_with_other_handlers_is_left_alone() -> None:
    logger = logging.getLogger("slml.test.other")
    logger.addHandler(logging.NullHandler())
    assert install_line_writer(logger) is None
    assert isinstance(logger.handlers[0], logging.NullHandler)


def test_a_stream_that_fails_costs_its_lines_not_the_writer() -> None:
    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError("stderr is gone")

    out = Writes()
    streams = iter([Broken(), out])
    writer = LineWriter(lambda: next(streams, out))
    writer.put("lost")
    import time

    time.sleep(0.2)  # the first batch goes to the broken stream
    writer.put("kept")
    writer.stop()
    assert out.getvalue().splitlines() == ["kept"]
