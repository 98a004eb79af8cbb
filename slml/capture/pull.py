"""``slml capture pull``: captured records since a time, written as JSONL or Parquet.

Parquet columns: ``request_id``, ``model``, ``version`` (strings), ``time`` (timestamp,
ms, UTC), ``latency_ms`` (double), ``inputs`` and ``outputs`` (the JSON text of each,
since their shape is the model's: ``json.loads`` them back).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from slml.capture.stores import entries
from slml.errors import ProviderUnavailable, UsageError

_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_STAMP = re.compile(r"(\d{8}T\d{6}\.\d{6})Z")
COLUMNS = ("request_id", "model", "version", "time", "latency_ms", "inputs", "outputs")


def parse_since(text: str | None, *, now: datetime | None = None) -> datetime | None:
    """``30m``, ``2h``, ``7d``, ``1w`` ago, or an ISO 8601 time (UTC when it names no
    zone); None for None. Raises UsageError otherwise."""
    if text is None:
        return None
    now = now or datetime.now(UTC)
    if m := _RELATIVE.match(text.strip()):
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--since {text!r} is neither a duration nor a time",
            hint="use e.g. 30m, 2h, 7d, or 2026-12-01T09:00:00Z",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def records(url: str, *, since: datetime | None = None, client: Any = None) -> Iterator[dict]:
    """Every record under ``url`` whose time is at or after ``since``. Files and
    objects whose name says they were written before ``since`` are not read."""
    for name, read in entries(url, client=client):
        written = _written(name)
        if since is not None and written is not None and written < since:
            continue
        for line in read().splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash mid-write
            if since is None or datetime.fromisoformat(record["time"]) >= since:
                yield record


def _written(name: str) -> datetime | None:
    m = _STAMP.search(name)
    return datetime.strptime(m.group(1), "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC) if m else None


def write(rows: Iterable[dict], output: Path, *, fmt: str) -> int:
    """Write ``rows`` to ``output`` as ``jsonl`` or ``parquet``; the number written."""
    output.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        n = 0
        with open(output, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, separators=(",", ":")) + "\n")
                n += 1
        return n
    if fmt != "parquet":
        raise UsageError(f"--format {fmt!r}: use jsonl or parquet")
    return _parquet(list(rows), output)


def _parquet(rows: list[dict], output: Path) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ProviderUnavailable(
            "--format parquet needs pyarrow", hint="pip install 'slml[batch]'"
        ) from None
    columns = {
        "request_id": [r.get("request_id") for r in rows],
        "model": [r.get("model") for r in rows],
        "version": [str(r.get("version")) for r in rows],
        "time": [datetime.fromisoformat(r["time"]) for r in rows],
        "latency_ms": [float(r.get("latency_ms", 0.0)) for r in rows],
        "inputs": [json.dumps(r.get("inputs")) for r in rows],
        "outputs": [json.dumps(r["outputs"]) if "outputs" in r else None for r in rows],
    }
    schema = pa.schema([
        ("request_id", pa.string()), ("model", pa.string()), ("version", pa.string()),
        ("time", pa.timestamp("ms", tz="UTC")), ("latency_ms", pa.float64()),
        ("inputs", pa.string()), ("outputs", pa.string()),
    ])  # fmt: skip
    pq.write_table(pa.table(columns, schema=schema), output)
    return len(rows)
