"""A model trained on a pandas DataFrame (string column selectors, a categorical column)
served end to end: save_model infers a columns signature and pins pandas, the runtime
rebuilds a DataFrame for it, and rows or columns both work."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

pd = pytest.importorskip("pandas")

from slml.artifact import save_model  # noqa: E402
from slml.runtime.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = pd.DataFrame({
        "age": [22.0, 35.0, 58.0, 41.0, 19.0, 63.0, 30.0, 47.0],
        "income": [18.0, 52.0, 80.0, 61.0, 12.0, 95.0, 40.0, 70.0],
        "city": ["oslo", "rome", "oslo", "lima", "rome", "lima", "oslo", "rome"],
    })
    target = [0, 1, 1, 1, 0, 1, 0, 1]
    model = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), ["age", "income"]),
                           ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"])]),
        LogisticRegression(),
    ).fit(frame, target)
    path = tmp_path_factory.mktemp("columns") / "credit"
    info = save_model(model, path, sample_input=frame.head(3), name="credit")
    manifest = info.manifest
    assert manifest["signature"]["inputs"]["kind"] == "columns"
    assert [c["name"] for c in manifest["signature"]["inputs"]["columns"]] == [
        "age", "income", "city"]
    assert any(r.startswith("pandas==") for r in manifest["requirements"])
    expected = model.predict(frame).tolist()
    with TestClient(create_app(Path(path))) as test_client:
        yield test_client, frame, expected


def test_rows_as_objects(client) -> None:
    test_client, frame, expected = client
    rows = frame.to_dict(orient="records")
    response = test_client.post("/predict", json={"instances": rows})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == expected


def test_columns(client) -> None:
    test_client, frame, expected = client
    columns = {name: frame[name].tolist() for name in frame.columns}
    response = test_client.post("/predict", json={"inputs": columns})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == expected


@pytest.mark.parametrize(
    "row",
    [
        {"age": 30.0, "income": 20.0},  # missing column
        {"age": 30.0, "income": 20.0, "city": "oslo", "zip": 1},  # unknown column
        {"age": "old", "income": 20.0, "city": "oslo"},  # wrong type
        {"age": 30.0, "income": 20.0, "city": 7},  # number where a string is expected
    ],
)
def test_bad_rows_are_422(client, row: dict) -> None:
    test_client, _, _ = client
    response = test_client.post("/predict", json={"instances": [row]})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_input"
