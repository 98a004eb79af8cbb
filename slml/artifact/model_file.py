"""save_model_file: make an artifact from a model file saved elsewhere (``slml save``).

``.joblib``/``.pkl``/``.pickle`` files are unpickled (with joblib when installed, which
also reads plain pickles): only do this with your own files, unpickling runs code.
Any other suffix is read by the flavor that declares it (``SUFFIXES`` and
``load_file`` of a flavor module: ``.onnx``, XGBoost ``.json``/``.ubj``, LightGBM
``.txt``, CatBoost ``.cbm``), or by the flavor named with ``flavor=``.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slml.artifact import schema
from slml.artifact.flavors import flavor_module, registered
from slml.artifact.save import ArtifactInfo, save_model
from slml.errors import ArtifactError

PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
PICKLE_HELP = (
    "scikit-learn (and anything pickled): model.joblib or model.pkl, from joblib.dump(model, "
    "...) or pickle.dump"
)


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
    method: str | None = None,
    drop_requirements: Sequence[str] | None = None,
    check: bool | None = None,
    serialization: str | None = None,
) -> ArtifactInfo:
    """Load (or, for .onnx, read) ``model_file`` and save it as an artifact at ``path``.
    Raises ArtifactError for a missing file, an unknown suffix or an unreadable pickle."""
    source = Path(model_file)
    read_by: str | None
    if source.is_dir():  # a directory a flavor reads (load_dir), e.g. save_pretrained's
        model, read_by = read_model_dir(source, flavor)
    elif not source.is_file():
        raise ArtifactError(f"model file {source} does not exist")
    else:
        model, read_by = read_model_file(source, flavor)
    return save_model(
        model, path, sample_input=fit_sample(model, sample_input), requirements=requirements,
        name=name, version=version, flavor=flavor or read_by, overwrite=overwrite,
        method=method, drop_requirements=drop_requirements, check=check,
        serialization=serialization,
    )  # fmt: skip


def fit_sample(model: Any, sample: Any) -> Any:
    """The sample as the model takes it: a DataFrame is kept for a model fit on one
    (``feature_names_in_``, a statsmodels formula); for any other model it becomes
    rows, as requests will be."""
    if not schema.is_dataframe(sample):
        return sample
    fit_on_frame = getattr(model, "feature_names_in_", None) is not None or (
        getattr(getattr(model, "model", None), "formula", None) is not None
    )
    return sample if fit_on_frame else sample.to_numpy().tolist()


def read_model_file(source: Path, flavor: str | None = None) -> tuple[Any, str | None]:
    """The model in ``source`` and the flavor that read it (None for a pickle, whose
    flavor is detected). Raises ArtifactError naming what each framework's file is."""
    suffix = source.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        return load_pickle(source), None
    if flavor is not None and callable(getattr(flavor_module(flavor), "load_file", None)):
        return flavor_module(flavor).load_file(source), flavor
    for name, module in registered().items():
        if suffix in getattr(module, "SUFFIXES", ()):
            return module.load_file(source), name
    raise ArtifactError(
        f"cannot tell what kind of model {source.name} holds; slml reads these files:\n  "
        + "\n  ".join(file_kinds()),
        hint="rename the file to its framework's suffix, or pass --flavor NAME "
        f"({', '.join(n for n, m in registered().items() if hasattr(m, 'load_file'))})",
    )


def read_model_dir(source: Path, flavor: str | None = None) -> tuple[Any, str]:
    """The model in directory ``source``, read by the first flavor whose ``load_dir``
    recognises it (returns None otherwise). Raises ArtifactError."""
    names = [flavor] if flavor is not None else list(registered())
    for name in names:
        load_dir = getattr(flavor_module(name), "load_dir", None)
        model = load_dir(source) if callable(load_dir) else None
        if model is not None:
            return model, name
    raise ArtifactError(
        f"{source} is a directory slml cannot read"
        + (f" with flavor {flavor!r}" if flavor else ""),
        hint="give a model file, or a transformers save_pretrained directory (config.json "
        "and the tokenizer's files)",
    )


def file_kinds() -> list[str]:
    """One line per framework: what its native model file looks like."""
    kinds = [PICKLE_HELP]
    kinds += [str(m.FILE_HELP) for m in registered().values() if hasattr(m, "FILE_HELP")]
    return kinds


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
