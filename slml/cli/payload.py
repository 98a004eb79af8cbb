"""Turn what the user typed for ``slml invoke`` into a request body."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from slml.errors import UsageError

_HINT = (
    'pass JSON such as \'{"instances": [[5.1, 3.5, 1.4, 0.2]]}\', a JSON list of rows, '
    "or --file data.json / data.csv"
)


def _number(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _from_csv(text: str, source: str) -> dict[str, Any]:
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if not rows:
        raise UsageError(f"{source} has no rows", hint=_HINT)
    first = rows[0]
    has_header = any(isinstance(_number(cell.strip()), str) for cell in first)
    body = rows[1:] if has_header else rows
    if not body:
        raise UsageError(f"{source} has a header but no data rows", hint=_HINT)
    values = [[_number(cell.strip()) for cell in row] for row in body]
    if has_header:
        names = [cell.strip() for cell in first]
        return {"instances": [dict(zip(names, row, strict=False)) for row in values]}
    return {"instances": values}


def _from_json(text: str, source: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{source} is not valid JSON: {exc}", hint=_HINT) from None
    if isinstance(data, list):
        return {"instances": data}
    if isinstance(data, dict):
        return data
    raise UsageError(f"{source} must be a JSON object or list, not {type(data).__name__}")


def load_payload(data: str | None, file: Path | None) -> dict[str, Any]:
    """The request body from inline JSON or a .json/.csv file. Raises UsageError."""
    if (data is None) == (file is None):
        raise UsageError("give the input either inline or with --file, not both or neither",
                         hint=_HINT)
    if file is None:
        return _from_json(data or "", "the input")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {file}: {exc}") from None
    if file.suffix.lower() == ".csv":
        return _from_csv(text, str(file))
    return _from_json(text, str(file))
