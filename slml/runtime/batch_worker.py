"""The process ``slml batch --engine local`` scores partitions in: the model loaded once,
then partitions in and answers out over stdin/stdout (slml/runtime/batch.py scores them).

Worker protocol (``python -m slml.runtime.batch_worker MODEL_DIR``): one JSON object per line
on stdin, ``{"id": K, "rows": [...], "text": false}``, or for CSV lines as they are in the
file ``{"id": K, "csv_bytes": N, "width": W, "features": [j, ...], "keep": [j, ...]}``
followed by those N bytes of UTF-8 text (``"csv": "..."`` inline also works), or for rows
parsed already ``{"id": K, "f64_bytes": N, "size": R, "width": W}`` followed by W columns
of R native float64 values, one column after the other. One answer per line on stdout,
``{"id": K, "ok": [i, ...], "predictions": [...], "errors": [[i, code, message], ...],
"kept": {j: [...]}}`` (``"ok": N``: rows 0 to N - 1); for float64 columns predicted in one
call to a numpy array, ``"array_bytes": N, "dtype": D, "shape": [...]`` stand for the
predictions, and that array's N bytes follow the line. The first line is ``{"ready":
true, ...}`` once the model is loaded, or ``{"ready": false, "error": "..."}``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from slml.runtime.batch import (
    _f64_values,
    _fast_eligible,
    _numeric_predict,
    _plain_array,
    score_array,
    score_frame,
)
from slml.runtime.loader import LoadedModel, load


def worker(model_dir: str, stdin: Any = None, stdout: Any = None) -> int:
    """Serve the worker protocol until stdin closes (both binary streams). Returns the
    exit code."""
    stdin = stdin or sys.stdin.buffer
    out = stdout or sys.stdout.buffer
    try:
        model = load(model_dir)
    except Exception as exc:
        _send(out, {"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1
    _send(out, {"ready": True, "model": model.name, "version": model.version})
    while line := stdin.readline():
        if not line.strip():
            continue
        job = json.loads(line)
        if (size := job.pop("csv_bytes", None)) is not None:
            job["csv"] = _read_exactly(stdin, size).decode("utf-8")
        if (size := job.pop("f64_bytes", None)) is not None:
            job["f64"] = _read_exactly(stdin, size)
        answer, data = _answer(model, job)
        _send(out, {"id": job["id"], **answer}, data)
    return 0


def _send(out: Any, line: dict[str, Any], data: bytes = b"") -> None:
    out.write(json.dumps(line, allow_nan=False).encode() + b"\n")
    out.write(data)
    out.flush()


def _answer(model: LoadedModel, job: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """A frame's answer: its line's fields, and the bytes that follow the line. Float64
    columns predicted in one call to a numpy array come back as that array's bytes
    (``array_bytes`` of ``dtype`` in ``shape``) instead of JSON predictions."""
    if job.get("f64") is None:
        return score_frame(model, job).as_dict(), b""
    values = _f64_values(job)
    out: Any = _numeric_predict(model, values, text=True) if _fast_eligible(model) else None
    if not _plain_array(out, len(values)):
        return score_array(model, values, out).as_dict(), b""
    head = {"ok": len(values), "predictions": [], "errors": [], "kept": {},
            "dtype": out.dtype.str, "shape": list(out.shape), "array_bytes": out.nbytes}
    return head, out.tobytes()


def _exit_now(code: int) -> None:
    """Exit without the interpreter's teardown (a third of a second with scikit-learn
    loaded, paid at the end of every run): every answer is written and flushed."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _read_exactly(stream: Any, size: int) -> bytes:
    data: bytes = stream.read(size)
    if len(data) != size:
        raise EOFError(f"the frame ended after {len(data)} of its {size} bytes")
    return data


if __name__ == "__main__":  # pragma: no cover - run as a process by the tests
    _exit_now(worker(sys.argv[1]))
