"""save_model_file: make an artifact from a model file saved elsewhere (``slml save``).

``.joblib``/``.pkl``/``.pickle`` files are unpickled (with joblib when installed, which
also reads plain pickles): only do this with your own files, unpickling runs code.
``.onnx`` files are copied as they are; their schema comes from the graph.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slml.artifact.save import ArtifactInfo, save_model
from slml.errors import ArtifactError

PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
SUFFIXES = (*PICKLE_SUFFIXES, ".onnx")


def save_model_file(
    model_file: str | Path,
    path: str | Path,
    *,
    flavor: str | None = None,
    sample_input: Any = None,
    requirements: Sequence[str] | None = None,
    name: str | None = None,
    version: str | int | None = None,
    overwrite: bool = False,
) -> ArtifactInfo:
    """Load (or, for .onnx, read) ``model_file`` and save it as an artifact at ``path``.
    Raises ArtifactError for a missing file, an unknown suffix or an unreadable pickle."""
    source = Path(model_file)
    if not source.is_file():
        raise ArtifactError(f"model file {source} does not exist")
    suffix = source.suffix.lower()
    if suffix not in SUFFIXES:
        raise ArtifactError(
            f"cannot tell what kind of model {source.name} holds; expected a file ending in "
            f"{', '.join(SUFFIXES)}"
        )
    model = source if suffix == ".onnx" else load_pickle(source)
    return save_model(
        model, path, sample_input=sample_input, requirements=requirements, name=name,
        version=version, flavor=flavor, overwrite=overwrite,
    )  # fmt: skip


def load_pickle(source: Path) -> Any:
    """Unpickle a joblib or plain pickle file (the user's own)."""
    try:
        import joblib
    except ImportError:
        joblib = None
    try:
        if joblib is not None:
            return joblib.load(source)
        with open(source, "rb") as fh:
            return pickle.load(fh)
    except ImportError as exc:
        raise ArtifactError(
            f"cannot load the model in {source} ({type(exc).__name__}: {exc})",
            hint="install the packages the model was trained with, in this environment",
        ) from None
    except Exception as exc:
        raise ArtifactError(
            f"{source} is not a readable joblib/pickle model file "
            f"({type(exc).__name__}: {exc})",
            hint="check the file is the model as saved by joblib.dump or pickle.dump",
        ) from None
