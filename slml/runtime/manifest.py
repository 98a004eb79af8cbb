"""The model artifact format, read side (stdlib only: the runtime ships it).

An artifact is a directory::

    <artifact>/
      slml-model.json      the manifest (below)
      model/...            the serialized model and, for the python flavor, its code

Manifest (JSON object), ``format`` 1::

    name, version            str, str
    flavor                   "sklearn" | "onnx" | "python" | "xgboost" | "lightgbm" |
                             "catboost" | "statsmodels", or a plug-in's name when
                             flavor_options.loader names its loader ("module:function")
    framework                {"name": str, "version": str}   e.g. scikit-learn 1.9.1
    python_version           "3.11.7"
    requirements             ["scikit-learn==1.9.1", ...] pinned, what the model needs
    signature                {"inputs": Schema, "outputs": Schema | null} | null
    flavor_options           flavor-specific (e.g. {"file": "model/model.joblib"})
    files                    {"model/model.joblib": "<sha256 hex>", ...} every file but
                             the manifest itself, relative POSIX paths
    created_at, created_by   ISO 8601 UTC, "user@host"
    git_commit               str | null
    slml_version             str
    exported_from            optional: {"flavor", "framework", "parity"} when the model was
                             converted (e.g. scikit-learn → ONNX with a parity check)

Schema (``signature.inputs``/``outputs``)::

    {"kind": "columns", "columns": [{"name": str, "dtype": str}, ...]}
    {"kind": "tensor", "dtype": str, "shape": [-1, 4], "names": [str, ...]?}
                             -1 = any size; optional names label the columns
    optional "nullable": true on a column or a tensor schema lets null/NaN through
    (null becomes NaN for float features); without it the runtime refuses them

dtypes are numpy names: float64, float32, int64, int32, bool, string.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

MANIFEST_FILE = "slml-model.json"
FORMAT_VERSION = 1
FLAVORS = ("sklearn", "onnx", "python", "xgboost", "lightgbm", "catboost", "statsmodels")
_CHUNK = 1 << 20


class ArtifactFormatError(Exception):
    """The directory is not a readable slml artifact (missing or malformed manifest)."""


class ArtifactIntegrityError(ArtifactFormatError):
    """A file's sha256 differs from the manifest's, or a listed file is missing or extra."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_tree(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` except the manifest, by relative POSIX path."""
    root = Path(root)
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for filename in sorted(filenames):
            full = Path(dirpath) / filename
            rel = full.relative_to(root).as_posix()
            if rel == MANIFEST_FILE or filename.endswith(".pyc"):
                continue
            out[rel] = sha256_file(full)
    return out


def artifact_digest(files: dict[str, str]) -> str:
    """One sha256 for the whole artifact: the hash of its sorted file hashes."""
    joined = "\n".join(f"{k}:{v}" for k, v in sorted(files.items()))
    return hashlib.sha256(joined.encode()).hexdigest()


def read_manifest(artifact_dir: Path) -> dict[str, Any]:
    """Parse and minimally validate the manifest. Raises ArtifactFormatError."""
    path = Path(artifact_dir) / MANIFEST_FILE
    if not Path(artifact_dir).is_dir():
        raise ArtifactFormatError(f"{artifact_dir} is not a directory (expected a model artifact)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactFormatError(
            f"{artifact_dir} has no {MANIFEST_FILE}: it is not an slml model artifact "
            "(create one with slml.save_model or `slml save MODEL_FILE`)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ArtifactFormatError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise ArtifactFormatError(f"{path} must hold a JSON object")
    missing = [k for k in ("name", "version", "flavor", "files") if k not in manifest]
    if missing:
        raise ArtifactFormatError(f"{path} lacks required keys: {', '.join(missing)}")
    options = manifest.get("flavor_options")
    plugin = isinstance(options, dict) and isinstance(options.get("loader"), str)
    if manifest["flavor"] not in FLAVORS and not plugin:
        raise ArtifactFormatError(
            f"{path}: unknown flavor {manifest['flavor']!r}; expected one of {', '.join(FLAVORS)}"
        )
    if manifest.get("format", FORMAT_VERSION) > FORMAT_VERSION:
        raise ArtifactFormatError(
            f"{path} uses artifact format {manifest['format']}, newer than this slml reads "
            f"({FORMAT_VERSION}); upgrade slml"
        )
    return manifest


def verify_files(artifact_dir: Path, manifest: dict[str, Any]) -> None:
    """Check every file against its recorded sha256. Pickles are code: a mismatch, a
    missing file or an unlisted file raises ArtifactIntegrityError before any load."""
    expected: dict[str, str] = manifest["files"]
    actual = hash_tree(Path(artifact_dir))
    problems = []
    for rel, digest in sorted(expected.items()):
        if rel not in actual:
            problems.append(f"{rel} is missing")
        elif actual[rel] != digest:
            problems.append(f"{rel} has sha256 {actual[rel][:12]}…, expected {digest[:12]}…")
    problems += [
        f"{rel} is not listed in the manifest" for rel in sorted(set(actual) - set(expected))
    ]
    if problems:
        raise ArtifactIntegrityError(
            f"model artifact {artifact_dir} failed its integrity check (refusing to load it: "
            "model files can run code): " + "; ".join(problems)
        )
