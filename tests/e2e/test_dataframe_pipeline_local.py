"""A DataFrame-trained ColumnTransformer pipeline (numbers, a string and a boolean
column) goes through `slml save model.joblib --sample sample.csv` → `slml deploy` (the
real local provider) and answers rows as objects, as columns and as CSV, through
`slml invoke --file` and `/invocations`."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from cli_project import project_dir, run_slml

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
pd = pytest.importorskip("pandas")



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


__all__ = ["project_dir"]


def test_dataframe_pipeline_from_the_cli(project_dir: Path) -> None:
    project = project_dir
    model, frame = _train(project)
    refused = run_slml(project, "save", "model.joblib", "--out", "nosample", check=False)
    assert refused.returncode != 0 and "selects its input columns by name" in refused.stderr
    run_slml(project, "save", "model.joblib", "--out", "artifact", "--sample", "sample.csv")
    manifest = json.loads((project / "artifact/slml-model.json").read_text())
    assert {c["name"]: c["dtype"] for c in manifest["signature"]["inputs"]["columns"]} == {
        "age": "int64", "income": "float64", "city": "string", "member": "bool",
    }  # fmt: skip
    (project / "slml.yaml").write_text("name: people\nmodel: artifact\nprovider: local\n")
    expected = model.predict(frame.head(3)).tolist()
    try:
        url = json.loads(run_slml(project, "deploy", "--json").stdout)["url"]
        records = frame.head(3).to_dict(orient="records")
        as_rows = httpx.post(f"{url}/predict", json={"instances": records}, timeout=30)
        assert as_rows.json()["predictions"] == expected, as_rows.text
        columns = {k: list(v) for k, v in frame.head(3).to_dict(orient="list").items()}
        as_columns = httpx.post(f"{url}/predict", json={"inputs": columns}, timeout=30)
        assert as_columns.json()["predictions"] == expected, as_columns.text
        invoked = json.loads(run_slml(project, "invoke", "--file", "sample.csv", "--json").stdout)
        assert invoked["predictions"] == expected
        csv_body = (project / "sample.csv").read_text()
        sagemaker = httpx.post(f"{url}/invocations", content=csv_body,
                               headers={"content-type": "text/csv"}, timeout=30)
        assert sagemaker.json()["predictions"] == expected, sagemaker.text
    finally:
        run_slml(project, "destroy", check=False)
