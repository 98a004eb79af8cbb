"""Reading a local server's log, which ``slml.runtime.logfile`` rotates by size:
``server-v<N>.log`` is the newest part, ``server-v<N>.log.1`` the one before, etc.

``tail`` reads across the newest two parts; ``follow`` keeps reading when the file it
follows is rotated away (it finishes the old part, then opens the new one).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_BYTES_PER_LINE = 400


def _tail_of(path: Path, lines: int) -> list[str]:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - max(lines, 1) * _BYTES_PER_LINE))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:] if lines > 0 else []


def tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a log (empty when it does not exist), taking the
    previous part (``<path>.1``) too when the current one was just rotated."""
    if lines <= 0:
        return []
    found = _tail_of(path, lines)
    if len(found) < lines:
        older = Path(path).with_name(Path(path).name + ".1")
        found = _tail_of(older, lines - len(found)) + found
    return found


def follow(path: Path, lines: int, *, poll: float = 0.2) -> Iterator[str]:
    """The last ``lines`` lines, then every new line as it is written, across
    rotations (also several between two reads); never ends."""
    path = Path(path)
    fh = open(path, "rb")  # noqa: SIM115 - reopened on rotation, closed in finally
    try:
        fh.seek(0, os.SEEK_END)  # before the tail is read, so no line falls in between
        yield from tail(path, lines)
        pending = b""
        while True:
            chunk = fh.readline()
            if chunk:
                pending += chunk
                if pending.endswith(b"\n"):
                    yield pending.decode("utf-8", errors="replace").rstrip("\n")
                    pending = b""
                continue
            newer = _newer_parts(path, fh)
            if newer is None:
                time.sleep(poll)
                continue
            fh.close()
            fh = open(newer, "rb")  # noqa: SIM115
    finally:
        fh.close()


def _parts(path: Path) -> list[Path]:
    """The log's parts, newest first: ``path``, ``path.1``, ``path.2``, ..."""
    found = [path]
    index = 1
    while (part := path.with_name(f"{path.name}.{index}")).exists():
        found.append(part)
        index += 1
    return found


def _newer_parts(path: Path, fh: BinaryIO) -> Path | None:
    """The part written after the one ``fh`` reads, None when ``fh`` reads the newest
    (or the log is unreadable). When ``fh``'s part was already deleted, the oldest."""
    with contextlib.suppress(OSError):
        mine = os.fstat(fh.fileno()).st_ino
        parts = _parts(path)
        inodes = [_inode(part) for part in parts]
        if inodes[0] == mine:
            return None
        return parts[inodes.index(mine) - 1] if mine in inodes else parts[-1]
    return None


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None
