"""One loader per flavor: ``(artifact_dir, manifest) -> Predictor``.

Each imports its framework lazily, inside the function, so that importing the runtime
costs nothing until a model is loaded. A ``Predictor`` takes a validated ``Batch`` and
returns the model's raw output (numpy arrays, lists, ...); the loader makes it
JSON-safe. What each flavor hands its model is in docs/CONTRACTS.md:

- sklearn / onnx: a 2-D numpy array in signature column order (a pandas DataFrame
  when the signature kind is ``columns`` and pandas is among the requirements).
  Without a signature: ``numpy.asarray`` of the rows as sent.
- python: the validated rows (lists in column order) when there is a signature, else
  the payload's ``instances`` list or ``inputs`` value unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slml.runtime.manifest import (
    ArtifactFormatError,
    ArtifactIntegrityError,
    read_listed,
    safe_relative,
)
from slml.runtime.validation import Batch

if TYPE_CHECKING:  # pathlib is imported only by the loaders that take a Path (below)
    from pathlib import Path

    from slml.runtime.manifest import StrPath

Predictor = Callable[[Batch], Any]
# What every native and plug-in flavor's loader is: (artifact directory, manifest) ->
# Predictor. scikit-learn and ONNX, the runtime's own, take the directory as a str or
# a Path and never import pathlib (3-4 ms of a cold start: slml/runtime/manifest.py).
Loader = Callable[["Path", dict[str, Any]], Predictor]


def load_flavor(artifact_dir: StrPath, manifest: dict[str, Any], *, verify: bool = True
                ) -> Predictor:  # fmt: skip
    if manifest["flavor"] == "sklearn":
        return load_sklearn(artifact_dir, manifest)
    if manifest["flavor"] == "onnx":
        return load_onnx(artifact_dir, manifest)
    from pathlib import Path

    if manifest["flavor"] == "python":  # the one flavor that imports files by itself
        return load_python(Path(artifact_dir), manifest, verify=verify)
    from slml.runtime.native_flavors import loader_for  # native formats and plug-ins

    return loader_for(manifest)(Path(artifact_dir), manifest)


def _option_path(artifact_dir: StrPath, manifest: dict[str, Any], default: str) -> tuple[str, str]:
    """(``flavor_options.file`` as given, its resolved path), once it is known to be a
    regular file inside the artifact and not a symlink; else ArtifactIntegrityError /
    ArtifactFormatError."""
    rel: str = manifest.get("flavor_options", {}).get("file", default)
    joined = os.path.join(artifact_dir, rel)
    path = os.path.realpath(joined)
    if os.path.islink(joined):
        raise ArtifactIntegrityError(f"{artifact_dir}: flavor_options.file {rel!r} is a symlink")
    root = os.path.realpath(artifact_dir)
    if os.path.commonpath([path, root]) != root or not os.path.isfile(path):
        raise ArtifactFormatError(
            f"{artifact_dir}: flavor_options.file {rel!r} is not a file inside the artifact"
        )
    return rel, path


def _option_file(artifact_dir: StrPath, manifest: dict[str, Any], default: str) -> Path:
    """The resolved path of ``flavor_options.file`` (see ``_option_path``)."""
    from pathlib import Path

    return Path(_option_path(artifact_dir, manifest, default)[1])


def _option_bytes(artifact_dir: StrPath, manifest: dict[str, Any], default: str) -> bytes:
    """The bytes of ``flavor_options.file``, read once and checked against the manifest
    (hash what you load: nothing can be swapped between the check and the unpickle)."""
    rel, _ = _option_path(artifact_dir, manifest, default)
    return read_listed(artifact_dir, manifest, rel)


def load_sklearn(artifact_dir: StrPath, manifest: dict[str, Any]) -> Predictor:
    """joblib-load (or, with ``flavor_options.serialization: skops``, skops-load) the
    estimator from its verified bytes; call ``flavor_options.method`` (predict by
    default)."""
    import io

    import joblib

    options = manifest.setdefault("flavor_options", {})
    data = _option_bytes(artifact_dir, manifest, "model/model.joblib")
    if options.get("serialization") == "skops":
        model = load_skops(data, options.get("trusted_types"), artifact_dir)
    else:
        model = joblib.load(io.BytesIO(data))
    method_name = manifest.get("flavor_options", {}).get("method", "predict")
    method = getattr(model, method_name, None)
    if not callable(method):
        raise ArtifactFormatError(
            f"{artifact_dir}: the model ({type(model).__name__}) has no method {method_name!r} "
            "(flavor_options.method; expected predict or predict_proba)"
        )
    classes: Any = getattr(model, "classes_", None)  # a numpy array when fitted
    if method_name != "predict" and "classes" not in options and getattr(classes, "ndim", 0) == 1:
        # a method chosen at serve time (slml.yaml method:): label the columns as save would
        options["classes"] = [c.item() if hasattr(c, "item") else c for c in classes]
    as_frame = _wants_frame(manifest)

    def predict(batch: Batch) -> Any:
        return method(to_array(batch, as_frame=as_frame))

    return predict


def load_skops(data: bytes, declared: Any, artifact_dir: StrPath) -> Any:
    """A skops file built with only the types the manifest declares trusted
    (``flavor_options.trusted_types``): a file that needs any other type is refused
    before anything is built from it. Raises ArtifactFormatError."""
    import skops.io as sio

    if not isinstance(declared, list) or not all(isinstance(t, str) for t in declared):
        raise ArtifactFormatError(
            f"{artifact_dir}: a skops model needs flavor_options.trusted_types, a list of "
            "type names"
        )
    needed = set(sio.get_untrusted_types(data=data))
    unexpected = sorted(needed - set(declared))
    if unexpected:
        raise ArtifactFormatError(
            f"{artifact_dir}: the skops file needs types the artifact does not declare "
            f"trusted: {', '.join(unexpected)}; refusing to load it (re-save the model "
            "with slml, and review the trusted types it lists)"
        )
    return sio.loads(data, trusted=sorted(needed))


def load_onnx(artifact_dir: StrPath, manifest: dict[str, Any]) -> Predictor:
    """An onnxruntime session on CPU (slml/runtime/onnx_flavor.py: single or named
    inputs, strings through a tokenizer, post-processing)."""
    from slml.runtime.onnx_flavor import load_onnx as load

    return load(artifact_dir, manifest)


ONNX_DTYPES = {  # onnxruntime input type → numpy dtype name
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


def load_python(artifact_dir: Path, manifest: dict[str, Any], *, verify: bool = True) -> Predictor:
    """Import ``module`` from ``code_dir`` (source only, each file checked against the
    manifest, after the runtime's own packages on sys.path: see usercode.py),
    instantiate ``class``, call ``load(data_dir)``. Both dirs must lie inside the
    artifact."""
    from slml.runtime.usercode import import_model_module

    options = manifest.get("flavor_options", {})
    try:
        module_name, class_name = options["module"], options["class"]
    except KeyError as exc:
        raise ArtifactFormatError(
            f"{artifact_dir}: python flavor needs flavor_options.{exc.args[0]}"
        ) from None
    code_dir = _inside(artifact_dir, options.get("code_dir", "model/code"), "code_dir")
    data_dir = _inside(artifact_dir, options.get("data_dir", "model/data"), "data_dir")
    files = {os.path.join(os.path.abspath(artifact_dir), rel): digest
             for rel, digest in manifest.get("files", {}).items()}  # fmt: skip
    module = import_model_module(module_name, code_dir, files, strict=verify)
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ArtifactFormatError(
            f"{artifact_dir}: module {module_name!r} has no class {class_name!r}"
        )
    instance = cls()
    if callable(getattr(instance, "load", None)):
        instance.load(data_dir)
    if not callable(getattr(instance, "predict", None)):
        raise ArtifactFormatError(f"{artifact_dir}: {class_name} has no predict(inputs) method")

    def predict(batch: Batch) -> Any:
        return instance.predict(batch.rows if batch.validated else batch.raw)

    return predict


def _inside(artifact_dir: Path, rel: Any, what: str) -> Path:
    """``artifact_dir / rel`` if ``rel`` is relative and stays inside the artifact once
    resolved (no ``..``, no absolute path, no symlink out), else ArtifactFormatError."""
    path = artifact_dir / safe_relative(rel, f"{artifact_dir}: python flavor {what}")
    if not path.resolve().is_relative_to(artifact_dir.resolve()):
        raise ArtifactFormatError(
            f"{artifact_dir}: python flavor {what} {rel!r} leaves the artifact"
        )
    return path


def _wants_frame(manifest: dict[str, Any]) -> bool:
    signature = manifest.get("signature") or {}
    inputs = signature.get("inputs") or {}
    reqs = [str(r).lower() for r in manifest.get("requirements") or []]
    has_pandas = any(r.split("=")[0].split("<")[0].split(">")[0].strip() == "pandas" for r in reqs)
    return inputs.get("kind") == "columns" and has_pandas


def to_array(batch: Batch, *, as_frame: bool) -> Any:
    """The batch as a numpy array (or DataFrame), typed by the signature when present."""
    import numpy as np

    if not batch.validated:
        rows = batch.rows
        if rows and isinstance(rows[0], dict):
            rows = [list(r.values()) for r in rows]
        return np.asarray(rows)
    if as_frame:
        import pandas as pd

        return pd.DataFrame(batch.rows, columns=batch.columns)
    return np.asarray(batch.rows, dtype=_common_dtype(batch))


def _common_dtype(batch: Batch) -> str | None:
    """The numpy dtype for validated rows: the signature's, ``object`` for strings or
    mixed column types."""
    dtype = batch.dtype
    if dtype in (None, "string", "str"):
        return "object"
    return dtype
