"""Turn what the user typed into data: the request body of ``slml invoke`` and the
``--sample`` of ``slml save``.

CSV cells are typed by the model's input schema when it is known (the deployed
artifact's signature): booleans (true/false/1/0), strings kept as written, an empty
cell is a missing value (null). Without a schema: numbers where they parse, true/false
as booleans, empty as null, anything else a string.
"""

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
_SAMPLE_HINT = "give a few rows as .csv (with a header), .json (rows or records) or .parquet"
_BOOLS = {"true": True, "false": False}


def _number(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _cell(text: str, dtype: str | None) -> Any:
    """One CSV cell, typed by ``dtype`` (the schema's) or guessed when None."""
    if text == "":
        return None
    if dtype in ("string", "str", "object"):
        return text
    if dtype == "bool":
        return {**_BOOLS, "1": True, "0": False}.get(text.lower(), text)
    if dtype is None and text.lower() in _BOOLS:
        return _BOOLS[text.lower()]
    return _number(text)


def _schema_dtypes(schema: dict[str, Any] | None) -> tuple[list[str] | None, dict[str, str]]:
    """The schema's column names (in order) and dtype by name; tensors give one dtype."""
    if not schema:
        return None, {}
    if schema.get("kind") == "columns":
        columns = schema.get("columns") or []
        return [c["name"] for c in columns], {c["name"]: c.get("dtype") for c in columns}
    names = schema.get("names")
    dtype = schema.get("dtype")
    return names, {n: dtype for n in names or []} | {"": dtype}


def _from_csv(text: str, source: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if not rows:
        raise UsageError(f"{source} has no rows", hint=_HINT)
    names, dtypes = _schema_dtypes(schema)
    first = [cell.strip() for cell in rows[0]]
    if names is not None:
        has_header = set(first) <= set(names)
    else:
        has_header = any(isinstance(_cell(cell, None), str) for cell in first)
    body = rows[1:] if has_header else rows
    if not body:
        raise UsageError(f"{source} has a header but no data rows", hint=_HINT)
    if has_header:
        return {"instances": [
            {n: _cell(c.strip(), dtypes.get(n, dtypes.get(""))) for n, c in zip(first, row,
                                                                                  strict=False)}
            for row in body
        ]}  # fmt: skip
    order = names or []
    by_position = [dtypes.get(order[i]) if i < len(order) else dtypes.get("") for i in
                   range(max(map(len, body)))]  # fmt: skip
    return {"instances": [
        [_cell(c.strip(), by_position[i]) for i, c in enumerate(row)] for row in body
    ]}  # fmt: skip


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


def load_payload(
    data: str | None, file: Path | None, *, schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The request body from inline JSON or a .json/.csv file (CSV cells typed by
    ``schema``, the model's input schema, when given). Raises UsageError."""
    if (data is None) == (file is None):
        raise UsageError("give the input either inline or with --file, not both or neither",
                         hint=_HINT)
    if file is None:
        return _from_json(data or "", "the input")
    text = _read(file)
    if file.suffix.lower() == ".csv":
        return _from_csv(text, str(file), schema)
    return _from_json(text, str(file))


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {file}: {exc}") from None


def load_sample(file: Path) -> Any:
    """A ``--sample`` file as data: a pandas DataFrame (with the dtypes pandas reads)
    for a CSV with a header, a parquet file or JSON records, when pandas is installed;
    else rows/records as parsed. Raises UsageError."""
    suffix = file.suffix.lower()
    if suffix == ".parquet":
        return _read_frame(file, "read_parquet")
    if suffix == ".csv":
        parsed = _from_csv(_read(file), str(file))["instances"]
        named = bool(parsed) and isinstance(parsed[0], dict)
        return _read_frame(file, "read_csv") if named and _has_pandas() else parsed
    body = _from_json(_read(file), str(file))
    rows = body.get("instances", body.get("inputs"))
    if rows is None:
        raise UsageError(f"{file} holds no rows", hint=_SAMPLE_HINT)
    records = isinstance(rows, list) and bool(rows) and isinstance(rows[0], dict)
    if (records or isinstance(rows, dict)) and _has_pandas():
        import pandas as pd

        return pd.DataFrame(rows)
    return rows


def _has_pandas() -> bool:
    import importlib.util

    return importlib.util.find_spec("pandas") is not None


def _read_frame(file: Path, reader: str) -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise UsageError(f"reading {file.name} needs pandas", hint="pip install pandas") from None
    try:
        return getattr(pd, reader)(file)
    except ImportError as exc:
        raise UsageError(f"reading {file.name} needs {exc.name or 'pyarrow'}",
                         hint="pip install pyarrow") from None
    except Exception as exc:
        raise UsageError(f"cannot read {file}: {exc}", hint=_SAMPLE_HINT) from None
