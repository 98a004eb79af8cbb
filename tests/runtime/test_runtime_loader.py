"""``slml.runtime.loader.load`` for every flavor, integrity checks, JSON-safe outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from runtime_support import write_manifest, write_python_artifact

from slml.runtime.errors import RequestError
from slml.runtime.loader import jsonable, load
from slml.runtime.manifest import MANIFEST_FILE, ArtifactFormatError, ArtifactIntegrityError

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


def test_sklearn_predict_and_identity(iris_artifact):
    model = load(iris_artifact)
    assert (model.name, model.version, model.flavor) == ("iris", "1", "sklearn")
    assert model.predict(ROWS) == [0, 2, 1]
    assert model.predict({"instances": ROWS[:1]}) == [0]


def test_sklearn_predict_proba(iris_artifact):
    manifest_path = iris_artifact / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    manifest["flavor_options"]["method"] = "predict_proba"
    manifest_path.write_text(json.dumps(manifest))
    probs = load(iris_artifact).predict(ROWS)
    assert len(probs) == 3 and all(len(p) == 3 for p in probs)
    assert all(math.isclose(sum(p), 1.0) for p in probs)
    assert [p.index(max(p)) for p in probs] == [0, 2, 1]


def test_sklearn_unknown_method_is_a_format_error(iris_artifact):
    manifest_path = iris_artifact / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    manifest["flavor_options"]["method"] = "transmogrify"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactFormatError, match="no method 'transmogrify'"):
        load(iris_artifact)


@pytest.mark.parametrize("tamper", ["modify", "delete", "add"])
def test_tampered_artifact_is_refused_before_loading(iris_artifact, tamper):
    model_file = iris_artifact / "model" / "model.joblib"
    if tamper == "modify":
        model_file.write_bytes(model_file.read_bytes() + b"\0")
    elif tamper == "delete":
        model_file.unlink()
    else:
        (iris_artifact / "model" / "extra.py").write_text("import os\n")
    with pytest.raises(ArtifactIntegrityError, match="integrity check"):
        load(iris_artifact)


def test_verify_false_skips_the_hash_check(iris_artifact):
    (iris_artifact / "model" / "notes.txt").write_text("unlisted")
    assert load(iris_artifact, verify=False).predict(ROWS[:1]) == [0]


def test_not_an_artifact(tmp_path):
    with pytest.raises(ArtifactFormatError, match=r"no slml-model\.json"):
        load(tmp_path)


def test_onnx_matches_sklearn(onnx_artifact, iris_artifact):
    onnx = load(onnx_artifact)
    assert onnx.flavor == "onnx"
    assert onnx.predict(ROWS) == load(iris_artifact).predict(ROWS)


def test_onnx_bad_output_index(onnx_artifact):
    manifest_path = onnx_artifact / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    manifest["flavor_options"]["output_index"] = 7
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactFormatError, match="output_index 7"):
        load(onnx_artifact)


def test_python_flavor_loads_data_and_validates(python_artifact):
    model = load(python_artifact)
    assert model.predict({"inputs": {"a": [1.0, 0.5], "b": [1, 2]}}) == [12.0, 21.0]
    with pytest.raises(RequestError) as err:
        model.predict([["x", 1]])
    assert err.value.code == "invalid_input"


def test_python_flavor_without_signature_gets_payload_unchanged(tmp_path):
    code = """
        class Echo:
            def predict(self, inputs):
                return [inputs]
    """
    artifact = write_python_artifact(tmp_path / "echo", code, module="slml_test_echo", cls="Echo")
    model = load(artifact)
    assert model.predict({"inputs": {"text": ["hi"]}}) == [{"text": ["hi"]}]
    assert model.predict([{"anything": 1}]) == [[{"anything": 1}]]


def test_python_flavor_missing_class_and_module(tmp_path):
    artifact = write_python_artifact(tmp_path / "a", "X = 1\n", module="slml_test_noclass")
    with pytest.raises(ArtifactFormatError, match="has no class 'Model'"):
        load(artifact)
    other = tmp_path / "b"
    (other / "model" / "code").mkdir(parents=True)
    write_manifest(other, flavor="python",
                   flavor_options={"module": "slml_test_absent", "class": "M"})  # fmt: skip
    with pytest.raises(ArtifactFormatError, match="cannot import module 'slml_test_absent'"):
        load(other)


def test_jsonable_handles_numpy_and_non_finite():
    value = {"a": np.array([1.5, np.nan, np.inf]), "b": np.int64(3), "c": (np.float32(0.5),)}
    assert jsonable(value) == {"a": [1.5, None, None], "b": 3, "c": [0.5]}
    assert json.dumps(jsonable(np.array([[1, 2], [3, 4]]))) == "[[1, 2], [3, 4]]"


def test_sklearn_with_a_columns_signature_gets_a_float_array(iris_artifact):
    manifest_path = iris_artifact / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    names = manifest["signature"]["inputs"]["names"]
    manifest["signature"]["inputs"] = {
        "kind": "columns",
        "columns": [{"name": n, "dtype": "float64"} for n in names],
    }
    manifest_path.write_text(json.dumps(manifest))
    model = load(iris_artifact)
    columns = {n: [row[i] for row in ROWS] for i, n in enumerate(names)}
    assert model.predict({"inputs": columns}) == [0, 2, 1]
    assert model.parse({"instances": ROWS}).dtype == "float64"


class _Marker:
    """Unpickling it writes a marker file: stands for a pickle that runs code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.write_text, (Path(self.path), "ran"))


def test_the_model_file_is_hashed_as_it_is_loaded(iris_artifact, tmp_path):
    """D4: swap the pickle after the tree was verified; the flavor loader must unpickle
    only bytes that match the manifest."""
    import pickle

    from slml.runtime.flavors import load_sklearn
    from slml.runtime.manifest import read_manifest, verify_files

    manifest = read_manifest(iris_artifact)
    verify_files(iris_artifact, manifest)
    marker = tmp_path / "pwned"
    (iris_artifact / "model" / "model.joblib").write_bytes(pickle.dumps(_Marker(str(marker))))
    with pytest.raises(ArtifactIntegrityError, match="changed after it was verified"):
        load_sklearn(iris_artifact, manifest)
    assert not marker.exists()


def test_jsonable_of_flat_lists_takes_its_one_pass_path_with_the_same_answers():
    assert jsonable([1, 2.5, float("nan"), float("-inf")]) == [1, 2.5, None, None]
    assert jsonable([10**400, 1.0]) == [10**400, 1.0]  # an int beyond float range stays exact
    assert jsonable([True, None, "a", 3]) == [True, None, "a", 3]
    assert jsonable((1, 2)) == [1, 2] and jsonable([]) == []
    assert jsonable([True, 1.5]) == [True, 1.5]  # a bool among floats: the element walk
    assert jsonable(np.array(["x", "y"], dtype=object)) == ["x", "y"]
