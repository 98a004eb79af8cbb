"""Models as data: ``save_model``, ``save_model_file`` and ``load_model``.

An artifact is a directory with the serialized model and its manifest (format in
slml/runtime/manifest.py, flavor options in docs/CONTRACTS.md). Importing this package
is light: frameworks (scikit-learn, onnx, pandas, ...) are imported only when a model
of theirs is saved.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from slml.artifact.model_file import save_model_file
from slml.artifact.save import ArtifactInfo, save_model
from slml.errors import ArtifactError, IntegrityError

if TYPE_CHECKING:  # pragma: no cover
    from slml.runtime.loader import LoadedModel

__all__ = ["ArtifactInfo", "load_model", "save_model", "save_model_file"]


def load_model(path: str | Path, *, verify: bool = True) -> LoadedModel:
    """Load an artifact with the serving runtime (what every bundle runs). Files are
    checked against their sha256 first unless ``verify=False``. Raises IntegrityError
    for a tampered, missing or extra file, ArtifactError for anything else unreadable."""
    from slml.runtime.loader import load
    from slml.runtime.manifest import ArtifactFormatError, ArtifactIntegrityError

    try:
        return load(path, verify=verify)
    except ArtifactIntegrityError as exc:
        raise IntegrityError(str(exc), hint="re-save the model; never edit an artifact") from None
    except ArtifactFormatError as exc:
        raise ArtifactError(str(exc)) from None
