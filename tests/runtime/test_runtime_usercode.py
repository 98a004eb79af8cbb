"""Issue 11, D2/D4/D6/D7: how the python flavor imports an artifact's code: from the
listed source only (no bytecode read or written), each file checked as it is imported,
inside the artifact, and after the runtime's own packages."""

from __future__ import annotations

import json
import os
import py_compile
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from runtime_support import write_manifest, write_python_artifact

from slml.runtime.loader import load
from slml.runtime.manifest import (
    MANIFEST_FILE,
    ArtifactFormatError,
    ArtifactIntegrityError,
    verify_files,
)

ROOT = Path(__file__).resolve().parents[2]
GENUINE = """
    class Model:
        def predict(self, rows):
            return ["genuine" for _ in rows]
"""


def _unique() -> str:
    return f"slml_test_code_{uuid.uuid4().hex[:8]}"


def _artifact(tmp_path: Path, code: str = GENUINE, **extra: str) -> tuple[Path, str]:
    """A python artifact; ``extra`` adds more modules to model/code (name → source)."""
    module = _unique()
    dest = tmp_path / "art"
    write_python_artifact(dest, code, module=module)
    for name, source in extra.items():
        (dest / "model" / "code" / f"{name}.py").write_text(textwrap.dedent(source))
    manifest = json.loads((dest / MANIFEST_FILE).read_text())
    write_manifest(dest, **{k: v for k, v in manifest.items() if k != "files"})
    return dest, module


def _forge_pyc(artifact: Path, module: str) -> Path:
    """A bytecode cache that Python would use without looking at the source
    (unchecked-hash), compiled from code that answers "forged"."""
    evil = artifact.parent / "evil.py"
    evil.write_text("class Model:\n    def predict(self, rows):\n        return ['forged']\n")
    pyc = (
        artifact / "model" / "code" / "__pycache__" / f"{module}.{sys.implementation.cache_tag}.pyc"
    )
    pyc.parent.mkdir()
    py_compile.compile(
        str(evil), cfile=str(pyc), invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
    )
    return pyc


@pytest.fixture(autouse=True)
def _forget_imported_models() -> Iterator[None]:
    """The artifacts' modules (unique names, and ``helper``) leave sys.modules after."""
    yield
    for name in [m for m in sys.modules if m.startswith("slml_test_code_") or m == "helper"]:
        del sys.modules[name]


# -- D2: bytecode ----------------------------------------------------------------------
def test_a_forged_pyc_in_an_artifact_is_refused(tmp_path: Path):
    artifact, module = _artifact(tmp_path)
    _forge_pyc(artifact, module)
    with pytest.raises(ArtifactIntegrityError, match=r"__pycache__.*is not listed"):
        load(artifact)


def test_bytecode_in_the_artifact_is_never_run(tmp_path: Path):
    artifact, module = _artifact(tmp_path)
    _forge_pyc(artifact, module)
    assert load(artifact, verify=False).predict([[1]]) == ["genuine"]


def test_loading_writes_no_bytecode_into_the_artifact(tmp_path: Path):
    """In a process that would write bytecode (PYTHONDONTWRITEBYTECODE unset)."""
    artifact, module = _artifact(tmp_path, helper="def answer():\n    return 42\n")
    (artifact / "model" / "code" / f"{module}.py").write_text(
        "import helper\n\nclass Model:\n    def predict(self, rows):\n"
        "        return [helper.answer() for _ in rows]\n"
    )
    manifest = json.loads((artifact / MANIFEST_FILE).read_text())
    write_manifest(artifact, **{k: v for k, v in manifest.items() if k != "files"})
    script = f"from slml.runtime.loader import load; print(load({str(artifact)!r}).predict([[1]]))"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.stdout.strip() == "[42]", done.stderr
    assert not list(artifact.rglob("__pycache__"))
    verify_files(artifact, json.loads((artifact / MANIFEST_FILE).read_text()))


# -- D4 for code: each module is checked as it is imported ------------------------------
def test_code_swapped_after_the_check_is_not_imported(tmp_path: Path):
    lazy = """
        class Model:
            def predict(self, rows):
                import {helper}
                return [{helper}.answer() for _ in rows]
    """
    helper = _unique()
    artifact, _module = _artifact(
        tmp_path, lazy.format(helper=helper), **{helper: "def answer():\n    return 1\n"}
    )
    model = load(artifact)
    (artifact / "model" / "code" / f"{helper}.py").write_text("def answer():\n    return 666\n")
    with pytest.raises(ArtifactIntegrityError, match="changed after the artifact was verified"):
        model.predict([[1]])


# -- D6: code_dir and data_dir stay inside the artifact --------------------------------
@pytest.mark.parametrize(
    ("key", "value"),
    [("code_dir", "../outside"), ("code_dir", "/tmp"), ("data_dir", "model/../../outside")],
)
def test_code_and_data_dirs_must_stay_inside_the_artifact(tmp_path: Path, key: str, value: str):
    artifact, module = _artifact(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / f"{module}.py").write_text(textwrap.dedent(GENUINE).replace("genuine", "outside"))
    manifest = json.loads((artifact / MANIFEST_FILE).read_text())
    manifest["flavor_options"][key] = value
    (artifact / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactFormatError, match=f"{key} .* relative path inside"):
        load(artifact)


def test_a_data_dir_symlinked_out_of_the_artifact_is_refused(tmp_path: Path):
    artifact, _module = _artifact(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    (artifact / "model" / "data").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ArtifactFormatError, match="data_dir 'model/data' leaves the artifact"):
        load(artifact, verify=False)


# -- D7: the artifact's code never shadows the server's own packages ---------------------
def test_a_shipped_h11_does_not_break_the_server(tmp_path: Path):
    """uvicorn imports h11 when it starts serving; a model's own h11.py must not be it."""
    artifact, _module = _artifact(tmp_path, h11="raise RuntimeError('the artifact h11 ran')\n")
    cmd = [sys.executable, "-m", "slml.runtime.serve", "--model", str(artifact), "--port", "0"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line, f"server exited ({proc.wait(10)}): {proc.stderr.read()}"  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{json.loads(line)['port']}"
        answer = httpx.post(f"{base}/predict", json={"instances": [[1]]}, timeout=10)
        assert answer.json()["predictions"] == ["genuine"]
    finally:
        proc.terminate()
        proc.wait(15)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
