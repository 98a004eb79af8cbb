"""The save-time serve check: a clean process limited to the manifest's requirements
loads the artifact and predicts the sample, so what would fail at deploy fails at save,
naming the module."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from slml.artifact import save_model
from slml.artifact.serve_check import allowed_modules
from slml.errors import ArtifactError


def test_a_forgotten_helper_module_fails_at_save(
    tmp_path: Path, user_modules: Callable[[str], Any]
) -> None:
    helper = f"helper_{uuid.uuid4().hex[:8]}"
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / f"{helper}.py").write_text("def double(x):\n    return 2 * x\n")
    module = user_modules(
        f"""
        import {helper}

        class Doubler:
            def predict(self, rows):
                return [[{helper}.double(v) for v in row] for row in rows]
        """
    )
    try:
        with pytest.raises(ArtifactError, match=f"needs module '{helper}'") as info:
            save_model(module.Doubler(), tmp_path / "m", sample_input=[[1.0]])
        assert "code_paths" in (info.value.hint or "")
        assert not (tmp_path / "m").exists()
        helper_file = tmp_path / "src" / f"{helper}.py"
        saved = save_model(module.Doubler(), tmp_path / "ok", sample_input=[[1.0]],
                           code_paths=[helper_file])  # fmt: skip
        assert saved.flavor == "python"
    finally:
        sys.modules.pop(helper, None)


def test_a_dropped_requirement_fails_the_check(tmp_path: Path, iris: Any, iris_clf: Any) -> None:
    with pytest.raises(ArtifactError, match="needs module 'sklearn'"):
        save_model(iris_clf, tmp_path / "m", sample_input=iris[0][:2], check=True,
                   drop_requirements=["scikit-learn"])  # fmt: skip
    info = save_model(iris_clf, tmp_path / "ok", sample_input=iris[0][:2], check=True)
    assert info.flavor == "sklearn"


def test_allowed_modules_follow_dependencies() -> None:
    allowed = allowed_modules(["scikit-learn==1.0"])
    assert {"sklearn", "numpy", "scipy", "joblib", "slml"} <= allowed
    assert "pandas" not in allowed
