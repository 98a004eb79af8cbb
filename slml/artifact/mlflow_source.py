"""MLflow models as a source for ``slml save``: a local MLflow model directory, or a
``models:/NAME/VERSION``, ``models:/NAME@ALIAS`` or ``runs:/RUN_ID/PATH`` URI fetched
from the tracking server or store that ``MLFLOW_TRACKING_URI`` names (mlflow's own
client and ``mlflow.artifacts.download_artifacts``; mlflow is imported only here).

``save_mlflow_model`` maps the model onto slml's native flavor where one exists
(slml/artifact/flavors/mlflow.py) and records where it came from in the manifest's
``source``: the URI, the run id, the registered model's name and version, MLflow's
version, its requirements.txt and the Python version of its python_env.yaml.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slml.artifact.flavors import mlflow as mlflow_flavor
from slml.artifact.save import ArtifactInfo, save_model
from slml.errors import ArtifactError

SCHEMES = ("models:/", "runs:/")
NATIVE_NAMES = tuple(mlflow_flavor.NATIVE)
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/]+)|@(?P<alias>[^/]+))$")
_RUN_URI = re.compile(r"^runs:/(?P<run>[0-9A-Za-z]+)/(?P<path>.+)$")


@dataclass(frozen=True)
class Origin:
    """Where an MLflow model came from, for the manifest's ``source``."""

    uri: str
    run_id: str | None = None
    registered_name: str | None = None
    registry_version: str | None = None

    def as_source(self, model: mlflow_flavor.MlflowModel) -> dict[str, Any]:
        mlmodel = model.mlmodel
        return {
            "kind": "mlflow",
            "uri": self.uri,
            "tracking_uri": _tracking_uri() if self.uri.startswith(SCHEMES) else None,
            "run_id": self.run_id or mlmodel.get("run_id"),
            "model_id": mlmodel.get("model_id"),
            "registered_model": self.registered_name,
            "registry_version": self.registry_version,
            "mlflow_version": mlmodel.get("mlflow_version"),
            "mlflow_flavors": sorted(model.flavors),
            "python_version": mlflow_flavor.python_version(model),
            "requirements": mlflow_flavor.mlflow_requirements(model),
        }


def is_mlflow_source(source: str | Path) -> bool:
    """A ``models:/``/``runs:/`` URI or a directory holding an ``MLmodel`` file."""
    text = str(source)
    return text.startswith(SCHEMES) or (Path(text) / mlflow_flavor.MLMODEL).is_file()


def default_name(source: str | Path) -> str:
    """The artifact directory name for ``source``: the registered model's name, the
    run's artifact path, or the directory's name."""
    text = str(source).rstrip("/")
    found = _MODEL_URI.match(text)
    if found:
        return found.group("name")
    found = _RUN_URI.match(text)
    if found:
        return Path(found.group("path")).name
    return Path(text).name or "model"


def save_mlflow_model(
    source: str | Path,
    path: str | Path,
    *,
    sample_input: Any = None,
    requirements: Sequence[str] | None = None,
    drop_requirements: Sequence[str] | None = None,
    name: str | None = None,
    version: str | int | None = None,
    method: str | None = None,
    overwrite: bool = False,
    check: bool | None = None,
) -> ArtifactInfo:
    """Save the MLflow model at ``source`` (directory or URI) as an slml artifact at
    ``path``. The sample defaults to MLflow's input example; ``version`` to the registry
    version for a ``models:/`` URI. Raises ArtifactError (no such model, no tracking
    server, mlflow missing, a flavor neither mapped nor pyfunc)."""
    _require_mlflow()
    with tempfile.TemporaryDirectory(prefix="slml-mlflow-") as scratch:
        local, origin = resolve(str(source), Path(scratch))
        model = mlflow_flavor.read(local)
        sample = sample_input if sample_input is not None else mlflow_flavor.input_example(model)
        common: dict[str, Any] = {
            "requirements": requirements, "drop_requirements": drop_requirements,
            "name": name, "version": version or origin.registry_version,
            "overwrite": overwrite, "check": check,
            "signature": mlflow_flavor.signature(model), "source": origin.as_source(model),
        }  # fmt: skip
        native = mlflow_flavor.native_flavor(model)
        if native is not None:
            try:
                loaded = mlflow_flavor.native_model(model, native[0])
                return save_model(
                    loaded, path, sample_input=_fit_sample(loaded, sample), method=method,
                    serialization=mlflow_flavor.serialization(model)
                    if native[0] == "sklearn" else None, **common,
                )  # fmt: skip
            except ArtifactError as exc:  # UnsupportedModel too
                if not mlflow_flavor.falls_back(model, native[0]):
                    raise
                why = f"the {native[1]} flavor cannot save it: {exc.message}"
                common["source"] = {**common["source"], "native_fallback": why}
        if method not in (None, "predict"):
            raise ArtifactError(
                f"method={method!r}: an MLflow model served through mlflow.pyfunc "
                "answers its predict only",
                hint=f"slml maps these MLflow flavors natively: {', '.join(NATIVE_NAMES)}",
            )
        return save_model(model, path, flavor="mlflow", sample_input=sample, **common)


def _fit_sample(model: Any, sample: Any) -> Any:
    from slml.artifact.model_file import fit_sample

    return fit_sample(model, sample)


def resolve(source: str, scratch: Path) -> tuple[Path, Origin]:
    """A local directory holding the model, and where it came from. URIs are
    downloaded into ``scratch``. Raises ArtifactError."""
    if not source.startswith(SCHEMES):
        path = Path(source)
        mlflow_flavor.read(path)  # raises for a directory without MLmodel
        return path, Origin(uri=str(path.absolute()))
    _tracking_uri()
    origin = _origin(source)
    from mlflow.artifacts import download_artifacts

    try:
        local = download_artifacts(artifact_uri=source, dst_path=str(scratch),
                                   tracking_uri=_tracking_uri())  # fmt: skip
    except Exception as exc:
        raise _not_found(source, exc) from None
    return Path(local), origin


def _origin(uri: str) -> Origin:
    """Run id and registry version of a URI, asked of the tracking server."""
    run = _RUN_URI.match(uri)
    if run:
        return Origin(uri=uri, run_id=run.group("run"))
    found = _MODEL_URI.match(uri)
    if not found:
        raise ArtifactError(
            f"{uri!r} is not an MLflow model URI slml reads",
            hint="use models:/NAME/VERSION, models:/NAME@ALIAS or runs:/RUN_ID/PATH",
        )
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=_tracking_uri(), registry_uri=_tracking_uri())
    model_name, alias = found.group("name"), found.group("alias")
    try:
        if alias is not None:
            mv = client.get_model_version_by_alias(model_name, alias)
        else:
            mv = client.get_model_version(model_name, found.group("version"))
    except Exception as exc:
        raise _not_found(uri, exc) from None
    return Origin(uri=uri, run_id=mv.run_id, registered_name=model_name,
                  registry_version=str(mv.version))  # fmt: skip


def _tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``. Raises ArtifactError when it is not set (mlflow's own
    default would create a store in the current directory)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if not uri:
        raise ArtifactError(
            "models:/ and runs:/ URIs are read from the MLflow tracking server or store "
            "named by MLFLOW_TRACKING_URI, which is not set",
            hint="export MLFLOW_TRACKING_URI=http://host:5000 (or sqlite:///path/mlflow.db)",
        )
    return uri


def _not_found(uri: str, exc: Exception) -> ArtifactError:
    detail = str(getattr(exc, "message", None) or exc).splitlines()[0][:300]
    return ArtifactError(
        f"cannot fetch {uri} from the MLflow tracking server at {_tracking_uri()}: {detail}",
        hint="set MLFLOW_TRACKING_URI to the server or store that holds the model, and "
        "check the name, version, alias or run id (mlflow models list / the MLflow UI)",
    )


def _require_mlflow() -> None:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise ArtifactError(
            "saving an MLflow model needs the mlflow package, which is not installed",
            hint="pip install 'slml[mlflow]'",
        ) from None
