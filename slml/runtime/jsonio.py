"""JSON in and out of the runtime: orjson when installed, the stdlib otherwise, with the
same results and the same error messages either way.

orjson is about 5-10x faster than ``json`` on request and response bodies, and the
bundles ship it for container and local targets (not for Lambda, where its import is
paid on every cold start; see docs/PERFORMANCE.md). Where orjson refuses what the
stdlib accepts or treats differently (integers beyond 64 bits, ``NaN`` literals, lone
surrogates, non-string keys), the stdlib path runs and decides: ``loads`` then raises
exactly what ``json.loads`` raises, so callers phrase one set of errors.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import ModuleType

# typed as a module or None, so mypy checks this file alike with and without orjson
try:  # an optional accelerator: never required
    import orjson

    _orjson: ModuleType | None = orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None

HAVE_ORJSON = _orjson is not None
# compiled only where orjson is (about 1 ms of a cold start: not on Lambda, which has none)
_LONG_NUMBER = re.compile(r"[0-9]{19}") if HAVE_ORJSON else None


def loads(text: str) -> Any:
    """``json.loads(text)``, through orjson when it accepts the text. A run of 19 or
    more digits goes to the stdlib: orjson reads integers beyond 64 bits as floats,
    rounding e.g. ``1797...0001`` (over float64's range) back into range."""
    if _orjson is not None and _LONG_NUMBER is not None and _LONG_NUMBER.search(text) is None:
        try:
            return _orjson.loads(text)
        except _orjson.JSONDecodeError:
            pass  # the stdlib decides, and words the error
    return json.loads(text)


def dumps(value: Any, *, finite: bool = False) -> bytes:
    """Compact UTF-8 JSON; NaN and infinities refused (ValueError) as with
    ``allow_nan=False``; unknown types as ``str(value)``. ``finite=True``: the caller
    knows there is no NaN or infinity in ``value`` (predictions went through
    ``loader.jsonable``), so the look for them is skipped."""
    if _orjson is not None and (finite or not _has_non_finite(value)):
        try:
            encoded: bytes = _orjson.dumps(value, default=str)
            return encoded
        except TypeError:  # e.g. an int beyond 64 bits, a non-string key
            pass
    return json.dumps(value, separators=(",", ":"), allow_nan=False, default=str).encode()


def _has_non_finite(value: Any) -> bool:
    """orjson writes NaN/inf as null where the stdlib refuses them: look first, cheaply
    (the runtime's predictions are already finite or None; this guards the manifest)."""
    kind = type(value)
    if kind is float:
        return value != value or value in (_INF, -_INF)
    if kind is list or kind is tuple:
        return any(_has_non_finite(v) for v in value)
    if kind is dict:
        return any(_has_non_finite(v) for v in value.values())
    return False


_INF = float("inf")
