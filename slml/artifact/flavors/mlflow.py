"""MLflow model directories (an ``MLmodel`` file): mapped onto slml's native flavors
where one exists, else served through ``mlflow.pyfunc``.

``mlflow_native(model_dir)`` reads the model with MLflow's own loader for its flavor
(``mlflow.sklearn.load_model`` honours the skops trusted types the MLmodel declares)
and returns the framework's object, which slml then saves as its own flavor:

============== ===================================================================
MLflow flavor  slml flavor
============== ===================================================================
sklearn        sklearn (pickle/cloudpickle re-saved with joblib; skops kept skops)
xgboost        xgboost (Booster or the sklearn wrapper, saved natively)
lightgbm       lightgbm (Booster) or sklearn (the LGBM sklearn wrappers)
onnx           onnx
pytorch        torch: MLflow 3's ``.pt2`` program as it is; a pickled TorchScript
               module as TorchScript; a pickled nn.Module exported on the input
               example (torch.export) or scripted; else the pyfunc fallback
keras          keras (MLflow 3 saves a ``.keras`` file)
transformers   transformers (the pipeline MLflow saved with save_pretrained)
anything else  mlflow (this module): the MLflow directory shipped as is, loaded
               with ``mlflow.pyfunc.load_model`` (slml/runtime/mlflow_pyfunc.py),
               its requirements.txt as the requirements (``mlflow``, never
               ``mlflow-skinny``/``mlflow-tracing`` alone)
============== ===================================================================

The MLflow signature becomes the manifest's signature when no input example lets the
native flavor infer one. mlflow is needed at save time only (``slml[mlflow]``); the
served artifact needs it only for the pyfunc fallback.
"""

from __future__ import annotations

import importlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slml.artifact import requirements as reqs
from slml.artifact.flavors import Saved, SaveOptions, registered
from slml.errors import ArtifactError

NAME = "mlflow"
EXPECTS = "the mlflow flavor saves an MLflow model directory (one with an MLmodel file)"
SUPPORTS = (
    "MLflow models (a directory with an MLmodel file, or models:/ and runs:/ URIs), as "
    "the native flavor where slml has one, else through mlflow.pyfunc"
)
PRIORITY = 5
LOADER = "slml.runtime.mlflow_pyfunc:load"
DIR = "model/mlflow"
MLMODEL = "MLmodel"
# MLflow flavor -> (slml flavor that must be installed, MLflow module with load_model)
NATIVE = {
    "sklearn": ("sklearn", "mlflow.sklearn"),
    "xgboost": ("xgboost", "mlflow.xgboost"),
    "lightgbm": ("lightgbm", "mlflow.lightgbm"),
    "onnx": ("onnx", "mlflow.onnx"),
    "pytorch": ("torch", "mlflow.pytorch"),
    "keras": ("keras", "mlflow.keras"),
    "transformers": ("transformers", "mlflow.transformers"),
}
#: MLflow flavors that fall back to mlflow.pyfunc when slml's flavor cannot save the
#: model (an nn.Module neither torch.export nor TorchScript can compile, ...)
FALLBACK = ("pytorch", "keras", "transformers")
MLFLOW_DTYPES = {
    "double": "float64", "float": "float32", "long": "int64", "integer": "int32",
    "boolean": "bool", "string": "string",
}  # fmt: skip


@dataclass(frozen=True)
class MlflowModel:
    """An MLflow model directory on disk and its parsed MLmodel file."""

    path: Path
    mlmodel: dict[str, Any] = field(default_factory=dict)

    @property
    def flavors(self) -> dict[str, Any]:
        return dict(self.mlmodel.get("flavors") or {})


def read(model_dir: str | Path) -> MlflowModel:
    """The MLflow model in ``model_dir``. Raises ArtifactError when it has no readable
    MLmodel file."""
    import yaml

    path = Path(model_dir)
    file = path / MLMODEL
    if not file.is_file():
        raise ArtifactError(
            f"{path} is not an MLflow model directory: it has no {MLMODEL} file",
            hint="give the directory mlflow.<flavor>.save_model wrote, or a models:/ or "
            "runs:/ URI",
        )
    try:
        parsed = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{file} is not a readable MLmodel file ({exc})") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("flavors"), dict):
        raise ArtifactError(f"{file} has no 'flavors' mapping; it is not an MLflow model")
    return MlflowModel(path, parsed)


def native_flavor(model: MlflowModel) -> tuple[str, str] | None:
    """(MLflow flavor, slml flavor) of the first MLflow flavor slml saves natively,
    or None for the pyfunc fallback."""
    installed = registered()
    for mlflow_flavor, (slml_flavor, _) in NATIVE.items():
        if mlflow_flavor in model.flavors and slml_flavor in installed:
            return mlflow_flavor, slml_flavor
    return None


def load_native(model: MlflowModel, mlflow_flavor: str) -> Any:
    """The framework's own object, read by MLflow's loader for ``mlflow_flavor``.
    Raises ArtifactError when mlflow cannot load it here."""
    module = importlib.import_module(NATIVE[mlflow_flavor][1])
    try:
        return module.load_model(str(model.path))
    except Exception as exc:
        raise ArtifactError(
            f"MLflow could not load the {mlflow_flavor} model in {model.path} "
            f"({type(exc).__name__}: {exc})",
            hint="install the packages in its requirements.txt in this environment",
        ) from None


def native_model(model: MlflowModel, mlflow_flavor: str) -> Any:
    """What slml saves as its native flavor: the ``torch.export`` program file MLflow 3
    wrote for a pytorch model (``serialization_format="pt2"``, its default: read by the
    torch flavor as a .pt2 file), else the object MLflow's own loader returns (a
    pickled nn.Module or TorchScript module, a Keras model, a transformers pipeline).
    Raises ArtifactError."""
    if mlflow_flavor == "pytorch":
        data = str((model.flavors.get("pytorch") or {}).get("model_data") or "data")
        program = model.path / data / "model.pt2"
        if program.is_file():
            return program
    return load_native(model, mlflow_flavor)


def falls_back(model: MlflowModel, mlflow_flavor: str) -> bool:
    """Whether a model slml's native flavor could not save is served through pyfunc."""
    return mlflow_flavor in FALLBACK and "python_function" in model.flavors


def serialization(model: MlflowModel) -> str | None:
    """``skops`` for an MLflow sklearn model stored with skops (MLflow 3's default)."""
    fmt = (model.flavors.get("sklearn") or {}).get("serialization_format")
    return "skops" if fmt == "skops" else None


def input_example(model: MlflowModel) -> Any:
    """The input example MLflow saved with the model (a DataFrame or array), or None."""
    from mlflow.models import Model

    try:
        return Model.load(str(model.path / MLMODEL)).load_input_example(str(model.path))
    except Exception:  # an example MLflow itself cannot read is no example
        return None


def signature(model: MlflowModel) -> dict[str, Any] | None:
    """The MLflow signature's inputs as slml's input schema (outputs are left to the
    model), or None when it has none slml can check (unnamed or binary columns)."""
    text = (model.mlmodel.get("signature") or {}).get("inputs")
    try:
        specs = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    if not isinstance(specs, list) or not specs:
        return None
    inputs = _inputs(specs)
    return None if inputs is None else {"inputs": inputs, "outputs": None}


def _inputs(specs: list[dict[str, Any]]) -> dict[str, Any] | None:
    if len(specs) == 1 and specs[0].get("type") == "tensor":
        tensor = specs[0].get("tensor-spec") or {}
        shape = [int(d) for d in tensor.get("shape") or []]
        if not shape or tensor.get("dtype") is None:
            return None
        return {"kind": "tensor", "dtype": str(tensor["dtype"]), "shape": [-1, *shape[1:]]}
    columns = []
    for spec in specs:
        dtype = MLFLOW_DTYPES.get(str(spec.get("type")))
        if dtype is None or not spec.get("name"):
            return None
        columns.append({"name": str(spec["name"]), "dtype": dtype})
    return {"kind": "columns", "columns": columns}


def mlflow_requirements(model: MlflowModel) -> list[str]:
    """The requirements.txt lines MLflow wrote beside the model (comments dropped)."""
    file = model.path / "requirements.txt"
    if not file.is_file():
        return []
    lines = [line.split("#", 1)[0].strip() for line in file.read_text("utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith("-")]


def python_version(model: MlflowModel) -> str | None:
    """The Python MLflow recorded in python_env.yaml (else in the pyfunc flavor)."""
    import yaml

    file = model.path / "python_env.yaml"
    if file.is_file():
        found = (yaml.safe_load(file.read_text("utf-8")) or {}).get("python")
        if found:
            return str(found)
    found = (model.flavors.get("python_function") or {}).get("python_version")
    return str(found) if found else None


def pyfunc_requirements(model: MlflowModel) -> list[str]:
    """MLflow's requirements with ``mlflow`` itself pinned to the installed version in
    place of ``mlflow-skinny``/``mlflow-tracing`` (which cannot load every model)."""
    lines = mlflow_requirements(model)
    partial = {"mlflow-skinny", "mlflow-tracing"}
    kept = [r for r in lines if reqs.requirement_name(r) not in partial]
    if not any(reqs.requirement_name(r) == "mlflow" for r in kept):
        kept.insert(0, reqs.pin(["mlflow"])[0])
    return kept


def matches(model: Any) -> bool:
    return isinstance(model, MlflowModel)


def save(model: Any, root: Path, *, options: SaveOptions) -> Saved:
    """Ship the MLflow directory under ``model/mlflow`` for ``mlflow.pyfunc``."""
    if "python_function" not in model.flavors:
        raise ArtifactError(
            f"the MLflow model in {model.path} has no python_function flavor and no flavor "
            f"slml saves natively ({', '.join(model.flavors) or 'none'})",
            hint=f"slml maps these MLflow flavors natively: {', '.join(NATIVE)}",
        )
    shutil.copytree(model.path, root / DIR, symlinks=False,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    version = reqs.installed_version("mlflow") or ""
    return Saved(
        flavor=NAME,
        framework={"name": "mlflow", "version": version},
        requirements=pyfunc_requirements(model),
        flavor_options={"dir": DIR, "method": "predict"},
        signature=signature(model),
    )
