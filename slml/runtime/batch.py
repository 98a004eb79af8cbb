"""Score a table partition by partition with the endpoint's own validation (stdlib only).

Shipped in every bundle, so the same code scores a partition in the model's environment
(``slml batch --engine local`` workers), in a Ray actor, and in a Cloud Run Job task
(``slml.runtime.batch_job``). A partition is a list of rows: lists in column order, dicts
keyed by column name, or (``text=True``) CSV fields as strings, which are converted by
the rules of the endpoint's ``text/csv`` parser. A row that fails validation or
prediction is reported with its index and error; the others are still predicted.

The worker protocol that ``slml batch --engine local`` speaks with its processes is in
slml/runtime/batch_worker.py.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from slml.runtime.errors import RequestError
from slml.runtime.loader import LoadedModel, jsonable
from slml.runtime.validation import Batch, InputSpec, parse_csv

PART = "part-{:05d}"  # partition k's file stem, in the output and under errors/ and _done/


class LayoutError(ValueError):
    """The input's columns do not give the model what it needs."""


def feature_columns(
    header: list[str], spec: InputSpec | None, *, exclude: tuple[str, ...] = ()
) -> list[int]:
    """Indices of ``header`` that feed the model, in the model's column order: the
    signature's named columns, or else every column not in ``exclude``, as they come."""
    names = spec.names if spec else None
    if names:
        missing = [n for n in names if n not in header]
        if missing:
            raise LayoutError(
                f"the input has no column {', '.join(map(repr, missing[:5]))}; the model "
                f"needs {', '.join(names)} (it has {', '.join(header[:20])})"
            )
        return [header.index(n) for n in names]
    return [i for i, name in enumerate(header) if name not in exclude]


@dataclass
class Scored:
    """The outcome of one partition: predictions for the rows in ``ok`` (same order)."""

    ok: list[int] = field(default_factory=list)
    predictions: list[Any] = field(default_factory=list)
    errors: list[tuple[int, str, str]] = field(default_factory=list)
    kept: dict[int, list[Any]] = field(default_factory=dict)  # CSV text: column -> values
    # instead of predictions: a numpy array's (dtype, shape, bytes), as a worker sent it
    array: tuple[str, list[int], bytes] | None = None

    @property
    def values(self) -> list[Any]:
        """The predictions as JSON values."""
        return self.predictions if self.array is None else array_values(*self.array)

    def as_dict(self) -> dict[str, Any]:
        """``ok`` is sent as a count when it is every row from 0 on (it is sorted)."""
        ok: list[int] | int = self.ok
        if self.ok and self.ok[-1] == len(self.ok) - 1:
            ok = len(self.ok)
        return {"ok": ok, "predictions": self.values,
                "errors": [list(e) for e in self.errors], "kept": self.kept}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scored:
        ok = data["ok"]
        return cls(list(range(ok)) if isinstance(ok, int) else ok, data["predictions"],
                   [tuple(e) for e in data["errors"]],
                   {int(k): v for k, v in (data.get("kept") or {}).items()})  # fmt: skip


SPLIT_BELOW = 64  # a failing run of rows shorter than this is checked row by row


def score(model: LoadedModel, rows: list[Any], *, text: bool = False) -> Scored:
    """Predict ``rows``; never raises for bad rows or a model that fails on some rows.

    The whole partition is tried at once; a run of rows that fails is halved until the
    halves pass or are short enough to check row by row, so a few bad rows cost a few
    small re-checks, not a partition validated one row at a time."""
    result = Scored()
    pending = [(0, rows)]
    while pending:
        offset, part = pending.pop()
        if not part:
            continue
        predictions = _try_all(model, part, text)
        if predictions is not None:
            result.ok += range(offset, offset + len(part))
            result.predictions += predictions
        elif len(part) >= SPLIT_BELOW:
            half = len(part) // 2
            pending += [(offset + half, part[half:]), (offset, part[:half])]
        else:
            _row_by_row(model, part, text, offset, result)
    return _in_order(result)


def _try_all(model: LoadedModel, rows: list[Any], text: bool) -> list[Any] | None:
    """Predictions for all ``rows``, or None when any of them fails."""
    if _fast_eligible(model):  # a refused run is split; single rows get the exact checks
        return _numeric_fast_path(model, rows, text=text)
    try:
        return _predict(model, _payload(model, rows, text))
    except Exception:
        return None


def _row_by_row(model: LoadedModel, rows: list[Any], text: bool, offset: int,
                result: Scored) -> None:
    valid: list[tuple[int, Any]] = []
    for i, row in enumerate(rows, offset):
        try:
            batch = model.parse(_payload(model, [row], text), max_rows=1)
        except RequestError as exc:  # a one-row CSV body: its "line 1" is this row
            result.errors.append((i, exc.code, exc.message.removeprefix("CSV line 1: ")))
            continue
        valid.append((i, batch.raw[0] if not batch.validated else batch.rows[0]))
    _predict_valid(model, valid, result)


def _in_order(result: Scored) -> Scored:
    order = sorted(range(len(result.ok)), key=result.ok.__getitem__)
    return Scored([result.ok[j] for j in order], [result.predictions[j] for j in order],
                  sorted(result.errors))


def score_csv(model: LoadedModel, text: str, *, width: int, features: list[int],
              keep: list[int]) -> Scored:
    """Score CSV lines (no header): a row with other than ``width`` fields is unreadable;
    ``features`` are the model's columns, ``keep`` the ones returned in ``kept``."""
    fast = _csv_fast_path(model, text, width=width, features=features) if not keep else None
    if fast is not None:
        return Scored(list(range(len(fast))), fast)
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    bad = {i: f"the CSV row has {len(r)} fields, expected {width}"
           for i, r in enumerate(rows) if len(r) != width}  # fmt: skip
    if features == list(range(width)):  # the model's columns are the file's, in order
        readable = [r for i, r in enumerate(rows) if i not in bad] if bad else rows
    else:
        readable = [[r[j] for j in features] for i, r in enumerate(rows) if i not in bad]
    scored = with_unreadable(score(model, readable, text=True), len(rows), bad)
    scored.kept = {j: [r[j] if len(r) == width else None for r in rows] for j in keep}
    return scored


def score_frame(model: LoadedModel, frame: dict[str, Any]) -> Scored:
    """Score one frame of the worker protocol (rows, CSV lines, or float64 columns)."""
    if frame.get("f64") is not None:
        return score_array(model, _f64_values(frame))
    if frame.get("csv") is not None:
        return score_csv(model, frame["csv"], width=frame["width"], features=frame["features"],
                         keep=frame["keep"])
    return score(model, frame["rows"], text=bool(frame.get("text")))


def with_unreadable(scored: Scored, size: int, bad: dict[int, str]) -> Scored:
    """``scored`` was computed without the rows in ``bad`` (row -> why it could not be
    read); renumber it to all ``size`` rows and report the unreadable ones as errors."""
    if not bad:
        return scored
    kept = [i for i in range(size) if i not in bad]
    errors = [(kept[j], code, message) for j, code, message in scored.errors]
    errors += [(i, "unreadable_row", message) for i, message in bad.items()]
    return Scored([kept[j] for j in scored.ok], scored.predictions, sorted(errors),
                  array=scored.array)


_FAST_FLAVORS = ("sklearn", "onnx")  # their predictors take the rows as one numpy array


def _numeric_fast_path(model: LoadedModel, rows: Any, *, text: bool) -> list[Any] | None:
    """For a ``_fast_eligible`` model (all-float features): one numpy conversion and one
    finiteness check accept exactly what the endpoint's per-value checks accept, for every
    row at once. Any row it refuses makes it return None; the exact path then decides.
    CSV fields are all strings, converted as ``float()`` would."""
    return _as_list(_numeric_predict(model, rows, text=text), len(rows))


def _as_list(out: Any, rows: int) -> list[Any] | None:
    """The model's output for ``rows`` rows as JSON values, or None when it is not one
    per row (the exact path then reports it as a model error)."""
    if out is None:
        return None
    try:
        out = jsonable(out)
    except Exception:
        return None
    out = out if isinstance(out, list) else [out]
    return out if len(out) == rows else None


def _numeric_predict(model: LoadedModel, rows: Any, *, text: bool) -> Any:
    """The model's own output for ``rows`` in one call (see ``_numeric_fast_path``), or
    None when a row is refused or the model fails. Lazily imports numpy, which these
    flavors' environments always hold."""
    spec = model.spec
    assert spec is not None and spec.features is not None
    import numpy as np

    try:
        values = np.array(rows, dtype=np.float64)
    except (ValueError, TypeError):
        return None
    if values.ndim != 2 or values.shape[1] != len(spec.features):
        return None
    if not np.isfinite(values).all() or (not text and not _all_numbers(rows)):
        return None
    # rows as one 2-D array, not a list: to_array takes it as is (no copy per row)
    batch = Batch(rows=values, raw=None, key="instances", validated=True,  # type: ignore[arg-type]
                  columns=spec.names, dtype=spec.array_dtype)
    try:
        return model.predictor(batch)
    except Exception:  # the model fails on some row: the exact path finds which
        return None


def _csv_fast_path(model: LoadedModel, text: str, *, width: int, features: list[int]
                   ) -> list[Any] | None:
    """For a ``_fast_eligible`` model: CSV lines parsed by numpy's C reader in one call,
    or None when any line is not plainly ``width`` numbers (a quote, a blank line, a
    missing or non-numeric field, another field count); the exact path then decides.
    numpy converts each field with ``PyOS_string_to_double``, the parser of ``float()``,
    and refuses more than it (``1_0``), never less, so what passes here passes there."""
    if not _fast_eligible(model) or '"' in text or not text.strip():
        return None
    import numpy as np

    lines = text.count("\n") + (not text.endswith("\n"))
    try:
        values = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float64,
                            comments=None, ndmin=2, quotechar=None)
    except ValueError:
        return None
    if values.shape != (lines, width):  # a blank line was skipped: row numbers would move
        return None
    if features != list(range(width)):
        values = values[:, features]
    return _numeric_fast_path(model, values, text=True)


def _fast_eligible(model: LoadedModel) -> bool:
    return numeric_inputs(model.flavor, model.spec)


def numeric_inputs(flavor: str, spec: InputSpec | None) -> bool:
    """Whether the model takes one float64 array with no missing values, so that rows of
    finite numbers can reach it as an array without per-value checks."""
    return (flavor in _FAST_FLAVORS and spec is not None and spec.features is not None
            and not spec.nullable
            and all(not f.nullable and f.dtype == "float64" for f in spec.features))


def score_array(model: LoadedModel, values: Any, out: Any = None) -> Scored:
    """Score a 2-D float64 array of finite values (already parsed, e.g. by the batch
    parent from CSV text): one call when the model takes it whole (``out``: that call's
    output, if made already), else row by row through ``score``, which isolates the rows
    the model fails on."""
    if out is None and _fast_eligible(model):
        out = _numeric_predict(model, values, text=True)
    predictions = _as_list(out, len(values))
    if predictions is not None:
        return Scored(list(range(len(predictions))), predictions)
    return score(model, values.tolist())


def _f64_values(frame: dict[str, Any]) -> Any:
    """A frame's ``width`` float64 columns of ``size`` rows, as rows."""
    import numpy as np

    values = np.frombuffer(frame["f64"], dtype=np.float64)
    return values.reshape(frame["width"], frame["size"]).T


def _plain_array(out: Any, rows: int) -> bool:
    """Whether ``out`` is a numpy array of one plain value (or row of them) per row, sent
    by the worker protocol as its bytes (``array_values`` reads them back)."""
    import numpy as np

    return (type(out) is np.ndarray and out.ndim >= 1 and len(out) == rows
            and out.dtype.kind in "biufU")


def array_values(dtype: str, shape: list[int], data: bytes) -> list[Any]:
    """The JSON values of an array sent as its bytes: what ``jsonable`` makes of the
    model's own array in the worker, since these are the very same array."""
    import numpy as np

    return list(jsonable(np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape)))


def _all_numbers(rows: list[Any]) -> bool:
    """numpy would take True as 1.0 and "5.1" as 5.1; the endpoint refuses both."""
    return all(type(v) in (int, float) for row in rows for v in row)


def _payload(model: LoadedModel, rows: list[Any], text: bool) -> dict[str, Any]:
    if not text:
        return {"instances": rows}
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return parse_csv(buffer.getvalue(), model.spec)


def _predict(model: LoadedModel, payload: dict[str, Any]) -> list[Any]:
    rows = payload["instances"]
    out = model.predict(model.parse(payload, max_rows=max(1, len(rows))))
    if len(out) != len(rows):
        raise RequestError(500, "model_error",
                           f"the model returned {len(out)} predictions for {len(rows)} rows")
    return out


def _predict_valid(model: LoadedModel, valid: list[tuple[int, Any]], result: Scored) -> None:
    """Predict the validated rows together; on failure, one by one to find the culprits."""
    if not valid:
        return
    try:
        predictions = _predict(model, {"instances": [row for _, row in valid]})
    except Exception:
        predictions = None
    if predictions is not None:
        result.ok += [i for i, _ in valid]
        result.predictions += predictions
        return
    for i, row in valid:
        try:
            (prediction,) = _predict(model, {"instances": [row]})
        except Exception as exc:
            result.errors.append((i, "model_error", f"{type(exc).__name__}: {exc}"[:500]))
            continue
        result.ok.append(i)
        result.predictions.append(prediction)


TRANSFORM_MEDIA = "application/jsonlines"


def transform_lines(model: LoadedModel, text: str, *, jsonl: bool) -> str:
    """A SageMaker Batch Transform mini-batch (``Accept: application/jsonlines``): CSV
    lines in the model's column order (a first line equal to the column names is a
    header and skipped) or JSON Lines (a list or a dict per line) → one JSON line per
    data row, in order: ``{"prediction": ...}`` or ``{"error": {"code", "message"}}``.
    Never raises for bad rows, so one bad row does not fail the job's mini-batch."""
    lines = [line for line in text.splitlines() if line.strip()]
    if jsonl:
        rows: list[Any] = []
        bad: dict[int, str] = {}
        for i, line in enumerate(lines):
            try:
                rows.append(json.loads(line))
            except ValueError as exc:
                bad[i] = f"the line is not JSON: {exc}"
        scored = with_unreadable(score(model, rows), len(lines), bad)
    else:
        names = model.spec.names if model.spec else None
        if lines and names and [c.strip() for c in next(csv.reader([lines[0]]))] == names:
            lines = lines[1:]
        width = (len(model.spec.features) if model.spec and model.spec.features
                 else len(next(csv.reader([lines[0]]))) if lines else 0)
        scored = score_csv(model, "\n".join(lines), width=width,
                           features=list(range(width)), keep=[])
    answers: list[str] = [""] * len(lines)
    for i, prediction in zip(scored.ok, scored.predictions, strict=True):
        answers[i] = json.dumps({"prediction": prediction})
    for i, code, message in scored.errors:
        answers[i] = json.dumps({"error": {"code": code, "message": message}})
    return "".join(a + "\n" for a in answers)
