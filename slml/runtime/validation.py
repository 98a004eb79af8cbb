"""Request payloads → a validated ``Batch`` (stdlib only; no numpy here).

Accepted payloads (one of the two keys, nothing else at the top level)::

    {"instances": [[5.1, 3.5, 1.4, 0.2], ...]}          rows in column order
    {"instances": [{"sepal_length": 5.1, ...}, ...]}    rows keyed by column name
    {"inputs": {"sepal_length": [5.1, ...], ...}}       columns: name -> values
    {"inputs": [[5.1, 3.5, 1.4, 0.2], ...]}             a batch tensor (same as rows)

With a signature (``manifest["signature"]["inputs"]``) every value is checked against
its dtype: numbers for float/int features (never ``true``/``false``), ``bool`` for bool,
``str`` for string. ``null`` and NaN are refused unless the schema says
``"nullable": true`` (per column, or on a tensor schema; then ``null`` becomes NaN for
float features); infinities and numbers beyond the dtype's range are always refused;
strings are never NaN. Without a signature the rows pass through unchecked except for
the batch shape (a non-empty list, at most ``max_rows``).
"""

from __future__ import annotations

import math
from typing import Any

from slml.runtime.errors import RequestError, invalid_input, invalid_request
from slml.runtime.record import Record

DEFAULT_MAX_ROWS = 10_000
FLOAT_MAX = {
    "float64": 1.7976931348623157e308,
    "float32": 3.4028234663852886e38,
    "float16": 65504.0,
}
INT_RANGE = {
    "int64": (-(2**63), 2**63 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int8": (-128, 127),
    "uint8": (0, 255),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}
_KEYS = ("instances", "inputs")


class Feature(Record):
    """One input column: its name (None in an unnamed tensor), dtype, and whether null
    is accepted."""

    __slots__ = ("dtype", "name", "nullable")
    _fields = ("name", "dtype", "nullable")
    name: str | None
    dtype: str
    nullable: bool

    def __init__(self, name: str | None, dtype: str, nullable: bool = False) -> None:
        self._set(name=name, dtype=dtype, nullable=nullable)


class InputSpec(Record):
    """The input signature, normalised. ``features`` is None for tensors whose width is
    unknown (``shape [-1, -1]``) or that are not 2-D; then ``item_shape``/``dtype`` rule."""

    __slots__ = ("dtype", "features", "float_limits", "item_shape", "kind", "nullable")
    _fields = ("kind", "features", "dtype", "item_shape", "nullable")
    kind: str
    features: tuple[Feature, ...] | None
    dtype: str
    item_shape: tuple[int, ...]
    nullable: bool
    float_limits: tuple[float, ...] | None
    """Each column's float bound when every column is a float dtype (the fast path of
    ``_check_row``); None otherwise. Computed once per spec, not per request."""

    def __init__(self, kind: str, features: tuple[Feature, ...] | None, dtype: str,
                 item_shape: tuple[int, ...], nullable: bool = False) -> None:  # fmt: skip
        self._set(kind=kind, features=features, dtype=dtype, item_shape=item_shape,
                  nullable=nullable, float_limits=_float_limits(features))  # fmt: skip

    @property
    def names(self) -> list[str] | None:
        if not self.features or any(f.name is None for f in self.features):
            return None
        return [f.name for f in self.features if f.name is not None]

    @property
    def array_dtype(self) -> str:
        """One numpy dtype for the whole batch (``object`` when columns differ)."""
        if self.features is None:
            return self.dtype
        kinds = {f.dtype for f in self.features}
        return kinds.pop() if len(kinds) == 1 else "object"



def _float_limits(features: tuple[Feature, ...] | None) -> tuple[float, ...] | None:
    if not features or not all(f.dtype in FLOAT_MAX for f in features):
        return None
    return tuple(FLOAT_MAX[f.dtype] for f in features)


class Batch(Record):
    """What the model is given. ``rows`` are in signature column order when
    ``validated``; otherwise ``raw`` is the payload's value, untouched."""

    __slots__ = ("columns", "dtype", "key", "raw", "rows", "validated")
    _fields = ("rows", "raw", "key", "validated", "columns", "dtype")
    rows: list[Any]
    raw: Any
    key: str
    validated: bool
    columns: list[str] | None
    dtype: str | None

    def __init__(self, rows: list[Any], raw: Any, key: str, validated: bool,
                 columns: list[str] | None = None, dtype: str | None = None) -> None:  # fmt: skip
        self._set(rows=rows, raw=raw, key=key, validated=validated, columns=columns,
                  dtype=dtype)  # fmt: skip

    def __len__(self) -> int:
        return len(self.rows)


def input_spec(schema: dict[str, Any] | None) -> InputSpec | None:
    """Normalise ``signature.inputs``; None when the model has no input schema."""
    if not schema:
        return None
    if schema.get("kind") == "tensors":  # several named inputs: checked by the flavor
        return None
    nullable = bool(schema.get("nullable", False))
    if schema.get("kind") == "columns":
        columns = tuple(
            Feature(c["name"], str(c.get("dtype", "float64")), bool(c.get("nullable", nullable)))
            for c in schema["columns"]
        )
        return InputSpec("columns", columns, "object", (len(columns),), nullable)
    dtype = str(schema.get("dtype", "float64"))
    shape = tuple(int(d) for d in schema.get("shape") or [-1])
    item_shape = shape[1:]
    names = schema.get("names")
    feats: tuple[Feature, ...] | None = None
    if len(item_shape) == 1 and (item_shape[0] >= 0 or names):
        width = len(names) if names else item_shape[0]
        labels = names or [None] * width
        feats = tuple(Feature(n, dtype, nullable) for n in labels)
    return InputSpec("tensor", feats, dtype, item_shape, nullable)


def parse_payload(payload: Any, spec: InputSpec | None, *, max_rows: int) -> Batch:
    """Check the top-level shape and every row; raise RequestError saying what was expected."""
    key, value = _top_level(payload)
    if key == "inputs" and isinstance(value, dict):
        rows = _columns_to_rows(value, spec)
    elif isinstance(value, list):
        rows = value
    else:
        want = "a list of rows" if key == "instances" else "an object of columns or a list of rows"
        raise invalid_request(f"'{key}' must be {want}, got {_kind(value)}")
    if not rows:
        raise RequestError(422, "empty_batch", f"'{key}' is empty: send at least one row")
    if len(rows) > max_rows:
        raise RequestError(
            422, "batch_too_large", f"{len(rows)} rows is over the limit of {max_rows} per request"
        )
    if spec is None:
        return Batch(rows=rows, raw=value, key=key, validated=False)
    limits = spec.float_limits
    checked = [
        (limits is not None and _fast_float_row(row, limits)) or _check_row(i, row, spec)
        for i, row in enumerate(rows)
    ]
    if spec.features is None and spec.item_shape:
        _check_not_ragged(checked)
    return Batch(
        rows=checked, raw=value, key=key, validated=True, columns=spec.names, dtype=spec.array_dtype
    )


def _top_level(payload: Any) -> tuple[str, Any]:
    expected = 'expected a JSON object {"instances": [...]} (rows) or {"inputs": {...}} (columns)'
    if not isinstance(payload, dict):
        raise invalid_request(f"{expected}, got {_kind(payload)}")
    present = [k for k in _KEYS if k in payload]
    unknown = sorted(set(payload) - set(_KEYS))
    if unknown:
        raise invalid_request(f"unknown key(s) {', '.join(map(repr, unknown))}: {expected}")
    if len(present) != 1:
        what = "both 'instances' and 'inputs'" if present else "neither 'instances' nor 'inputs'"
        raise invalid_request(f"the body has {what}: {expected}")
    return present[0], payload[present[0]]


def _columns_to_rows(columns: dict[str, Any], spec: InputSpec | None) -> list[Any]:
    """``{"a": [1, 2], "b": [3, 4]}`` → rows as dicts keyed by column name."""
    lengths = set()
    for name, values in columns.items():
        if not isinstance(values, list):
            raise invalid_request(f"'inputs.{name}' must be a list of values, got {_kind(values)}")
        lengths.add(len(values))
    if len(lengths) > 1:
        sizes = ", ".join(f"{n}: {len(v)}" for n, v in columns.items())
        raise invalid_input(f"columns in 'inputs' must have the same length, got {sizes}")
    if spec is not None and spec.names is None:
        raise invalid_request(
            "this model's inputs have no column names: send 'instances' as lists of values"
        )
    n = lengths.pop() if lengths else 0
    return [{name: values[i] for name, values in columns.items()} for i in range(n)]


_EXACT_INT = 2**53  # integers up to this convert to float exactly


def _fast_float_row(row: Any, limits: tuple[float, ...]) -> list[float] | None:
    """The row as floats when it is a list of finite, in-range numbers for all-float
    columns, else None (then ``_check_row`` checks it and phrases the error). Saves
    building a label per value for the rows that are fine, which is most of them."""
    if type(row) is not list or len(row) != len(limits):
        return None
    for v, limit in zip(row, limits, strict=True):
        kind = type(v)
        if kind is int:
            if not (-_EXACT_INT <= v <= _EXACT_INT and -limit <= v <= limit):
                return None
        elif kind is not float or not -limit <= v <= limit:  # NaN fails the comparison
            return None
    return [float(v) for v in row]


def _check_row(i: int, row: Any, spec: InputSpec) -> Any:
    if spec.features is None:
        return _check_tensor(row, spec.item_shape, spec, f"row {i}")
    feats = spec.features
    if isinstance(row, dict):
        row = _dict_row(i, row, spec)
    elif not isinstance(row, list):
        raise invalid_input(
            f"row {i} must be a list of {len(feats)} values{_names(spec)}, got {_kind(row)}"
        )
    if len(row) != len(feats):
        raise invalid_input(f"row {i} has {len(row)} values, expected {len(feats)}{_names(spec)}")
    return [
        _check_value(v, f, f"row {i}, {_label(f, j)}")
        for j, (v, f) in enumerate(zip(row, feats, strict=True))
    ]


def _dict_row(i: int, row: dict[str, Any], spec: InputSpec) -> list[Any]:
    names = spec.names
    if names is None:
        raise invalid_input(
            f"row {i} is an object, but this model's inputs have no column names: "
            f"send each row as a list of {len(spec.features or ())} values"
        )
    missing = [n for n in names if n not in row]
    unknown = [k for k in row if k not in names]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"lacks {', '.join(map(repr, missing))}")
        if unknown:
            parts.append(f"has unknown {', '.join(map(repr, unknown))}")
        raise invalid_input(f"row {i} {' and '.join(parts)}; expected columns: {', '.join(names)}")
    return [row[n] for n in names]


def _check_tensor(value: Any, shape: tuple[int, ...], spec: InputSpec, where: str) -> Any:
    if not shape:
        return _check_value(value, Feature(None, spec.dtype, spec.nullable), where)
    if not isinstance(value, list):
        raise invalid_input(
            f"{where} must be a list (expected shape {_shape(shape)}), got {_kind(value)}"
        )
    if shape[0] >= 0 and len(value) != shape[0]:
        raise invalid_input(
            f"{where} has {len(value)} items, expected {shape[0]} (shape {_shape(shape)})"
        )
    out = [_check_tensor(v, shape[1:], spec, f"{where}[{j}]") for j, v in enumerate(value)]
    if shape[0] < 0 and len(shape) > 1 and len({len(v) for v in out if isinstance(v, list)}) > 1:
        raise invalid_input(f"{where} is ragged: its items differ in length")
    return out


def _check_not_ragged(rows: list[Any]) -> None:
    first = _dims(rows[0])
    for i, row in enumerate(rows):
        if _dims(row) != first:
            raise invalid_input(
                f"rows are ragged: row {i} has shape {list(_dims(row))}, row 0 has {list(first)}"
            )


def _dims(value: Any) -> tuple[int, ...]:
    dims = []
    while isinstance(value, list):
        dims.append(len(value))
        value = value[0] if value else None
    return tuple(dims)


def parse_csv(text: str, spec: InputSpec | None) -> dict[str, Any]:
    """A text/csv body (SageMaker's usual format) → ``{"instances": rows}``.

    One row per line, no quoting surprises (the csv module's dialect). A first line equal
    to the column names is a header and skipped. Fields are converted by the feature's
    dtype (empty → null); without a signature, numbers where they parse, else strings.
    """
    import csv
    import io

    try:
        rows = [r for r in csv.reader(io.StringIO(text)) if r]
    except csv.Error as exc:
        raise RequestError(
            400, "invalid_csv", f"the text/csv body cannot be parsed: {exc}"
        ) from None
    names = spec.names if spec else None
    if rows and names and [c.strip() for c in rows[0]] == names:
        rows = rows[1:]
    feats = spec.features if spec else None
    out = []
    for i, row in enumerate(rows):
        if feats is not None and len(row) != len(feats):
            raise invalid_input(
                f"CSV line {i + 1} has {len(row)} fields, expected {len(feats)}"
                f"{_names(spec) if spec else ''}"
            )
        dtypes = [f.dtype for f in feats] if feats else [None] * len(row)
        out.append([_csv_field(v.strip(), d, i) for v, d in zip(row, dtypes, strict=True)])
    return {"instances": out}


def _csv_field(text: str, dtype: str | None, line: int) -> Any:
    if text == "":
        return None
    if dtype in ("string", "str", "object"):
        return text
    if dtype == "bool":
        return {"true": True, "false": False, "1": True, "0": False}.get(text.lower(), text)
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    if dtype is None:
        return text
    raise invalid_input(f"CSV line {line + 1}: {_short(text)} is not a number ({dtype})")


def _check_value(v: Any, feat: Feature, where: str) -> Any:
    """The value, converted for the dtype (None → NaN for nullable floats), or raise."""
    dtype = feat.dtype
    if v is None or (isinstance(v, float) and math.isnan(v)):
        if feat.nullable and dtype.startswith("float"):
            return math.nan
        if feat.nullable and v is None and dtype in ("string", "str", "object"):
            return None
        what = "null" if v is None else "NaN"
        raise invalid_input(
            f"{where}: {what} is not allowed (expected {_expect(dtype)}; "
            "this input does not accept missing values)"
        )
    if dtype.startswith("float"):
        return _check_float(v, dtype, where)
    if dtype.startswith(("int", "uint")):
        return _check_int(v, dtype, where)
    if dtype == "bool":
        if not isinstance(v, bool):
            raise invalid_input(f"{where}: expected true or false, got {_kind(v)}")
        return v
    if dtype in ("string", "str"):
        if not isinstance(v, str):
            raise invalid_input(f"{where}: expected a string, got {_kind(v)}")
        return v
    return v


def _check_float(v: Any, dtype: str, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise invalid_input(f"{where}: expected a number ({dtype}), got {_kind(v)}")
    try:
        f = float(v)
    except OverflowError:
        f = math.inf
    limit = FLOAT_MAX.get(dtype, math.inf)
    if math.isinf(f) or abs(f) > limit or (isinstance(v, int) and _int_over(v, limit)):
        raise invalid_input(f"{where}: {_short(v)} is out of range for {dtype}")
    return f


def _int_over(v: int, limit: float) -> bool:
    """Exact for huge integers: above the limit as written in decimal (the OpenAPI bound),
    even where the float conversion would round them back into range."""
    if abs(v) <= 2**53 or math.isinf(limit):
        return False
    from decimal import Decimal

    return abs(v) > int(Decimal(repr(limit)))


def _check_int(v: Any, dtype: str, where: str) -> int:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise invalid_input(f"{where}: expected an integer ({dtype}), got {_kind(v)}")
    lo, hi = INT_RANGE.get(dtype, (-(2**63), 2**63 - 1))
    if not lo <= v <= hi:
        raise invalid_input(f"{where}: {_short(v)} is out of range for {dtype} [{lo}, {hi}]")
    return v


def _expect(dtype: str) -> str:
    if dtype.startswith(("float", "int", "uint")):
        return f"a number ({dtype})"
    return {"bool": "true or false", "string": "a string"}.get(dtype, dtype)


def _names(spec: InputSpec) -> str:
    names = spec.names
    return f" ({', '.join(names)})" if names else ""


def _label(feat: Feature, j: int) -> str:
    return f"column {feat.name!r}" if feat.name else f"value {j}"


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join("any" if d < 0 else str(d) for d in shape) + "]"


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 24 else text[:20] + "…"


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return f"the number {_short(v)}"
    if isinstance(v, str):
        return f"the string {_short(v)}"
    containers: dict[type, str] = {list: "a list", dict: "an object"}
    return containers.get(type(v), type(v).__name__)
