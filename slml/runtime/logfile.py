"""Copy standard input to a log file that rotates by size (stdlib only).

    python -m slml.runtime.logfile PATH [--max-bytes N] [--keep K]

The local provider pipes a server's stdout and stderr through this, so its log can
never grow without bound: when writing a line would take ``PATH`` over ``N`` bytes,
``PATH`` becomes ``PATH.1`` (``PATH.1`` becomes ``PATH.2``, and so on; beyond ``K``
the oldest is deleted) and a new ``PATH`` starts. Lines are never split across files
(a line longer than ``N`` is cut into ``N``-byte pieces). It exits once every writer
has closed the pipe, after writing what was left, so a server killed with SIGKILL
loses no line it wrote; SIGTERM and SIGINT are ignored for that reason (the server's
process group gets them, and this must outlive the server by a moment).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import BinaryIO

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_KEEP = 3


def rotated(path: Path, index: int) -> Path:
    return path.with_name(f"{path.name}.{index}")


class RotatingFile:
    """Appends lines to ``path``, rotating it before it would pass ``max_bytes``."""

    def __init__(self, path: Path, *, max_bytes: int, keep: int) -> None:
        self.path = Path(path)
        self.max_bytes = max(1024, max_bytes)
        self.keep = max(1, keep)
        self._fh = self._open()

    def _open(self) -> BinaryIO:
        fh = open(self.path, "ab", buffering=0)  # noqa: SIM115 - held open for the life
        self._size = fh.seek(0, os.SEEK_END)
        return fh

    def write_line(self, line: bytes) -> None:
        for start in range(0, max(len(line), 1), self.max_bytes):
            piece = line[start : start + self.max_bytes]
            if self._size and self._size + len(piece) > self.max_bytes:
                self.rotate()
            self._fh.write(piece)
            self._size += len(piece)

    def rotate(self) -> None:
        self._fh.close()
        rotated(self.path, self.keep).unlink(missing_ok=True)
        for index in range(self.keep - 1, 0, -1):
            if rotated(self.path, index).exists():
                os.replace(rotated(self.path, index), rotated(self.path, index + 1))
        os.replace(self.path, rotated(self.path, 1))
        self._fh = self._open()

    def close(self) -> None:
        self._fh.close()


def pump(source: BinaryIO, sink: RotatingFile) -> None:
    """Copy ``source`` line by line into ``sink`` until end of file."""
    while line := source.readline(sink.max_bytes):
        sink.write_line(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m slml.runtime.logfile")
    parser.add_argument("path", type=Path)
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES)
    parser.add_argument("--keep", type=int, default=DEFAULT_KEEP)
    args = parser.parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    sink = RotatingFile(args.path, max_bytes=args.max_bytes, keep=args.keep)
    try:
        pump(sys.stdin.buffer, sink)
    finally:
        sink.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
