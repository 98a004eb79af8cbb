from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import slml
from slml.bundle.runtime_files import copy_runtime, runtime_source


def test_copy_runtime_writes_minimal_package(tmp_path: Path) -> None:
    package = copy_runtime(tmp_path)
    assert package == tmp_path / "slml"
    init = (package / "__init__.py").read_text()
    assert f'__version__ = "{slml.__version__}"' in init
    assert "_LAZY" not in init and "import" not in init  # not slml's full API file
    runtime = package / "runtime"
    shipped = {p.relative_to(runtime).as_posix() for p in runtime.rglob("*") if p.is_file()}
    expected = {
        p.relative_to(runtime_source()).as_posix()
        for p in runtime_source().rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert "manifest.py" in shipped
    assert shipped == expected
    assert not list(package.rglob("__pycache__"))


def test_copied_runtime_imports_alone(tmp_path: Path) -> None:
    copy_runtime(tmp_path)
    code = (
        "import sys, slml, slml.runtime.manifest as m; "
        "print(m.MANIFEST_FILE, slml.__version__, sys.modules['slml'].__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r}); {code}"],
        capture_output=True,
        text=True,
        check=True,
    )
    name, version, where = out.stdout.split()
    assert name == "slml-model.json" and version == slml.__version__
    assert where.startswith(str(tmp_path))


def test_copy_runtime_overwrites_a_previous_copy(tmp_path: Path) -> None:
    copy_runtime(tmp_path)
    stale = tmp_path / "slml" / "runtime" / "stale.py"
    stale.write_text("x = 1")
    copy_runtime(tmp_path)
    assert not stale.exists()
