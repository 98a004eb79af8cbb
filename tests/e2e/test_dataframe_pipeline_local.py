"""A DataFrame-trained ColumnTransformer pipeline (numbers, a string and a boolean
column) goes through `slml save model.joblib --sample sample.csv` → `slml deploy` (the
real local provider) and answers rows as objects, as columns and as CSV, through
`slml invoke --file` and `/invocations`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
pd = pytest.importorskip("pandas")

SLML = str(Path(sys.executable).with_name("slml"))


def _slml(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([SLML, *args], cwd=project, capture_output=True, text=True,
                          timeout=600, env=os.environ.copy(), check=False)
    if check:
        assert done.returncode == 0, f"slml {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def _train(project: Path) -> tuple[object, object]:
    import joblib
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = pd.DataFrame({
        "age": [22, 35, 58, 41, 29, 63, 47, 33],
        "income": [28.0, 52.5, 81.0, 60.2, 33.3, 90.1, 70.0, 45.5],
        "city": ["paris", "lyon", "paris", "nice", "lyon", "nice", "paris", "lyon"],
        "member": [True, False, True, True, False, True, False, False],
    })  # fmt: skip
    target = [0, 0, 1, 1, 0, 1, 1, 0]
    columns = ColumnTransformer([
        ("num", StandardScaler(), ["age", "income"]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
        ("flag", "passthrough", ["member"]),
    ])  # fmt: skip
    model = Pipeline([("prep", columns), ("clf", LogisticRegression())]).fit(frame, target)
    joblib.dump(model, project / "model.joblib")
    frame.head(3).to_csv(project / "sample.csv", index=False)
    return model, frame


def test_dataframe_pipeline_from_the_cli(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLML_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "slml-cache"))
    project = tmp_path / "people"
    project.mkdir()
    model, frame = _train(project)
    refused = _slml(project, "save", "model.joblib", "--out", "nosample", check=False)
    assert refused.returncode != 0 and "selects its input columns by name" in refused.stderr
    _slml(project, "save", "model.joblib", "--out", "artifact", "--sample", "sample.csv")
    manifest = json.loads((project / "artifact/slml-model.json").read_text())
    assert {c["name"]: c["dtype"] for c in manifest["signature"]["inputs"]["columns"]} == {
        "age": "int64", "income": "float64", "city": "string", "member": "bool",
    }  # fmt: skip
    (project / "slml.yaml").write_text("name: people\nmodel: artifact\nprovider: local\n")
    expected = model.predict(frame.head(3)).tolist()
    try:
        url = json.loads(_slml(project, "deploy", "--json").stdout)["url"]
        records = frame.head(3).to_dict(orient="records")
        as_rows = httpx.post(f"{url}/predict", json={"instances": records}, timeout=30)
        assert as_rows.json()["predictions"] == expected, as_rows.text
        columns = {k: list(v) for k, v in frame.head(3).to_dict(orient="list").items()}
        as_columns = httpx.post(f"{url}/predict", json={"inputs": columns}, timeout=30)
        assert as_columns.json()["predictions"] == expected, as_columns.text
        invoked = json.loads(_slml(project, "invoke", "--file", "sample.csv", "--json").stdout)
        assert invoked["predictions"] == expected
        csv_body = (project / "sample.csv").read_text()
        sagemaker = httpx.post(f"{url}/invocations", content=csv_body,
                               headers={"content-type": "text/csv"}, timeout=30)
        assert sagemaker.json()["predictions"] == expected, sagemaker.text
    finally:
        _slml(project, "destroy", check=False)
