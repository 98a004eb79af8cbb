"""MLflow models from a REAL tracking server (SQLite store, local artifact root, on
127.0.0.1) go through `slml save URI` → `slml deploy` (local) → `slml invoke`: a
scikit-learn model in skops (MLflow 3's default) from runs:/, one in cloudpickle
registered as models:/iris/1, and a pyfunc model (no slml flavor) as models:/adder/1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_project import project_dir, run_slml
from mlflow_server import mlflow_server

# the server's start and mlflow's installs into the bundles take minutes on a busy machine
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1200)]
mlflow = pytest.importorskip("mlflow")
ADDER = Path(__file__).parents[1] / "fixtures" / "mlflow" / "adder_model.py"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]

__all__ = ["project_dir"]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The server, with three models logged and two registered; MLFLOW_TRACKING_URI
    set for the module."""
    import mlflow.pyfunc
    import mlflow.sklearn
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500).fit(X, y)
    root = tmp_path_factory.mktemp("mlflow")
    with mlflow_server(root) as url, pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", url)
        mlflow.set_tracking_uri(url)
        with mlflow.start_run() as run:
            mlflow.sklearn.log_model(clf, name="skops", input_example=X[:3])
            mlflow.sklearn.log_model(clf, name="pickled", input_example=X[:3],
                                     serialization_format="cloudpickle",
                                     registered_model_name="iris")  # fmt: skip
            example = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
            mlflow.pyfunc.log_model(name="adder", python_model=str(ADDER),
                                    input_example=example, registered_model_name="adder")
        mlflow.MlflowClient().set_registered_model_alias("iris", "champion", "1")
        yield {"url": url, "run_id": run.info.run_id, "expected": clf.predict(ROWS).tolist()}


def _save_deploy_invoke(project: Path, uri: str, rows: Any) -> tuple[dict[str, Any], Any]:
    run_slml(project, "save", uri, "--out", "artifact", "--overwrite")
    manifest = json.loads((project / "artifact" / "slml-model.json").read_text())
    (project / "rows.json").write_text(json.dumps(rows))
    (project / "slml.yaml").write_text("name: mlflow-model\nmodel: artifact\nprovider: local\n")
    try:
        run_slml(project, "deploy")
        answer = json.loads(run_slml(project, "invoke", "--file", "rows.json", "--json").stdout)
    finally:
        run_slml(project, "destroy")
    return manifest, answer["predictions"]


def test_skops_model_from_a_run(project_dir: Path, registry: dict[str, Any]) -> None:
    uri = f"runs:/{registry['run_id']}/skops"
    manifest, predictions = _save_deploy_invoke(project_dir, uri, ROWS)
    assert predictions == registry["expected"]
    assert manifest["flavor"] == "sklearn"
    assert manifest["flavor_options"]["serialization"] == "skops"
    assert manifest["source"]["uri"] == uri and manifest["source"]["run_id"] == registry["run_id"]
    assert manifest["source"]["tracking_uri"] == registry["url"]


def test_cloudpickle_model_registered_as_version_1(
    project_dir: Path, registry: dict[str, Any]
) -> None:
    manifest, predictions = _save_deploy_invoke(project_dir, "models:/iris/1", ROWS)
    assert predictions == registry["expected"]
    assert manifest["flavor"] == "sklearn" and manifest["version"] == "1"
    assert manifest["flavor_options"]["file"] == "model/model.joblib"
    source = manifest["source"]
    assert (source["registered_model"], source["registry_version"]) == ("iris", "1")
    assert source["run_id"] == registry["run_id"]


def test_pyfunc_model_serves_through_mlflow(project_dir: Path, registry: dict[str, Any]) -> None:
    rows = [{"a": 1.0, "b": 2.0}, {"a": 10.0, "b": -4.0}]
    manifest, predictions = _save_deploy_invoke(project_dir, "models:/adder/1", rows)
    assert predictions == [3.5, 6.5]
    assert manifest["flavor"] == "mlflow"
    assert manifest["requirements"][0] == f"mlflow=={mlflow.__version__}"


def test_alias_and_unknown_versions(project_dir: Path, registry: dict[str, Any]) -> None:
    run_slml(project_dir, "save", "models:/iris@champion", "--out", "by-alias")
    manifest = json.loads((project_dir / "by-alias" / "slml-model.json").read_text())
    assert manifest["source"]["registry_version"] == "1" and manifest["version"] == "1"
    done = run_slml(project_dir, "save", "models:/iris/9", check=False)
    assert done.returncode == 2 and "cannot fetch models:/iris/9" in done.stderr
    assert "Traceback" not in done.stderr
