"""Issue 11, D1/D2 on the build side: every builder copies exactly the artifact's listed
files (never what a symlink points to), and the Lambda bytecode step leaves the model's
code alone (bytecode there would be unlisted, and refused at load)."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import pytest

from slml.bundle.azure import _assemble as assemble_azure
from slml.bundle.bytecode import Interpreter
from slml.bundle.lambda_bundle import build_function
from slml.errors import IntegrityError
from slml.runtime.loader import load
from slml.runtime.manifest import MANIFEST_FILE, hash_tree

HERE = Interpreter(sys.executable, platform.python_version())
CODE = "class Model:\n    def predict(self, rows):\n        return [len(r) for r in rows]\n"


def python_artifact(dest: Path) -> Path:
    (dest / "model" / "code").mkdir(parents=True)
    (dest / "model" / "code" / "slml_test_copied.py").write_text(CODE)
    manifest = {
        "format": 1, "name": "py", "version": "1", "flavor": "python", "requirements": [],
        "signature": None, "files": hash_tree(dest),
        "flavor_options": {"module": "slml_test_copied", "class": "Model",
                           "code_dir": "model/code", "data_dir": "model/data"},
    }  # fmt: skip
    (dest / MANIFEST_FILE).write_text(json.dumps(manifest))
    return dest


def test_lambda_function_compiles_the_runtime_but_not_the_model(tmp_path: Path):
    artifact = python_artifact(tmp_path / "art")
    function, _zip = build_function(artifact, tmp_path / "out", interpreter=HERE)
    assert list((function / "slml" / "runtime").glob("__pycache__/*.pyc"))
    assert not list((function / "model").rglob("__pycache__"))
    try:
        assert load(function / "model").predict([[1, 2]]) == [2]
    finally:
        sys.modules.pop("slml_test_copied", None)


def test_lambda_and_azure_refuse_a_symlinked_secret(tmp_path: Path):
    artifact = python_artifact(tmp_path / "art")
    secret = tmp_path / "home" / ".aws"
    secret.mkdir(parents=True)
    (secret / "credentials").write_text("hunter2")
    (artifact / "model" / "aws").symlink_to(secret)
    with pytest.raises(IntegrityError, match="model/aws is a symlink"):
        build_function(artifact, tmp_path / "lambda")
    (tmp_path / "site").mkdir()
    with pytest.raises(IntegrityError, match="model/aws is a symlink"):
        assemble_azure(
            tmp_path / "azure", artifact_dir=artifact, site=tmp_path / "site",
            auth="function", model_name="py",
        )  # fmt: skip
    assert not [p for p in tmp_path.rglob("credentials") if "home" not in p.parts]


def test_unlisted_files_never_reach_a_bundle(tmp_path: Path):
    artifact = python_artifact(tmp_path / "art")
    (artifact / "model" / "code" / ".env").write_text("SECRET=1")
    with pytest.raises(IntegrityError, match=r"model/code/\.env is not listed"):
        build_function(artifact, tmp_path / "lambda")
