"""Load an artifact once and predict with it: ``load(model_dir) -> LoadedModel``.

``load`` reads the manifest, checks every file's sha256 BEFORE deserialising anything
(pickles are code), then hands over to the flavor's loader (slml/runtime/flavors.py),
which imports its framework only then and deserialises the very bytes it hashed.
``LoadedModel.predict`` returns JSON-safe Python values: numpy arrays and scalars become
lists and numbers, and NaN or infinite floats in the output become ``null`` (JSON has
no NaN).
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from slml.runtime.errors import RequestError
from slml.runtime.flavors import Predictor, load_flavor
from slml.runtime.manifest import read_manifest, verify_files
from slml.runtime.serve_method import with_served_method
from slml.runtime.validation import DEFAULT_MAX_ROWS, Batch, InputSpec, input_spec, parse_payload

if TYPE_CHECKING:
    from slml.runtime.manifest import StrPath


class LoadedModel:
    """A model ready to serve. ``predict`` is thread-safe as far as the framework is.
    ``path`` is the artifact directory (``load`` makes it a str).
    (A plain class: a dataclass costs its definition's ``exec`` on every cold start.)"""

    __slots__ = ("manifest", "path", "predictor", "spec")

    def __init__(self, manifest: dict[str, Any], path: StrPath, predictor: Predictor,
                 spec: InputSpec | None = None) -> None:  # fmt: skip
        self.manifest, self.path, self.predictor, self.spec = manifest, path, predictor, spec

    def __repr__(self) -> str:
        return f"LoadedModel(manifest={self.manifest!r}, path={self.path!r}, spec={self.spec!r})"

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def flavor(self) -> str:
        return str(self.manifest["flavor"])

    def parse(self, payload: Any, *, max_rows: int = DEFAULT_MAX_ROWS) -> Batch:
        """Validate a request payload against this model's input signature."""
        return parse_payload(payload, self.spec, max_rows=max_rows)

    def predict(self, batch: Batch | list[Any] | dict[str, Any]) -> list[Any]:
        """Predictions for a ``Batch``, a list of rows, or a payload dict, as a JSON-safe
        list. Bad input raises ``RequestError``; the model's own errors propagate."""
        if not isinstance(batch, Batch):
            payload = batch if isinstance(batch, dict) else {"instances": batch}
            batch = self.parse(payload, max_rows=max(DEFAULT_MAX_ROWS, _len(payload)))
        out = jsonable(self.predictor(batch))
        out = out if isinstance(out, list) else [out]
        if len(out) != len(batch) and (batch.validated or self.flavor != "python"):
            raise RequestError(
                500, "model_error",
                f"the model returned {len(out)} prediction(s) for {len(batch)} input row(s); "
                "a model must return one prediction per row",
            )  # fmt: skip
        return out

    @property
    def classes(self) -> list[Any] | None:
        """The class labels of the served output's columns (``predict_proba`` and
        friends), answered beside the predictions; None for ``predict``."""
        options = self.manifest.get("flavor_options") or {}
        if options.get("method", "predict") == "predict":
            return None
        classes = options.get("classes")
        return list(classes) if isinstance(classes, list) else None


def load(model_dir: StrPath, *, verify: bool = True) -> LoadedModel:
    """Load the artifact at ``model_dir``. Raises ``ArtifactFormatError`` (unreadable
    manifest, bad flavor options) or ``ArtifactIntegrityError`` (hash mismatch, unlisted
    file, symlink or special file). ``verify=False`` skips the check of the whole tree;
    the files a flavor reads are still refused when they are not regular files, and
    checked against the manifest as they are read when it lists them. Imports no
    pathlib for scikit-learn and ONNX models (slml/runtime/manifest.py)."""
    path = os.fspath(model_dir)
    manifest = read_manifest(path)
    if verify:
        verify_files(path, manifest)
    manifest = with_served_method(manifest)
    signature = manifest.get("signature") or {}
    predictor = load_flavor(path, manifest, verify=verify)
    return LoadedModel(manifest, path, predictor, input_spec(signature.get("inputs")))


def jsonable(value: Any) -> Any:
    """Numpy/pandas values → plain JSON values; non-finite floats → None."""
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # a DataFrame
        value = value.to_dict(orient="records")
    elif hasattr(value, "tolist"):  # numpy arrays and scalars, pandas Series
        value = value.tolist()
    elif hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        kinds = set(map(type, value))  # one pass: a flat list of plain values needs no walk
        if kinds <= _PLAIN:
            return list(value)
        if kinds <= _NUMBERS:  # ints as they are (one beyond float range stays exact)
            return [None if type(v) is float and not math.isfinite(v) else v for v in value]
        return [jsonable(v) for v in value]
    return str(value)


_PLAIN = frozenset({int, str, bool, type(None)})
_NUMBERS = frozenset({int, float})


def _len(payload: dict[str, Any]) -> int:
    for key in ("instances", "inputs"):
        value = payload.get(key)
        if isinstance(value, list):
            return len(value)
    return 0
