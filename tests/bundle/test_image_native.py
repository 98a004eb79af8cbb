"""The image's native-library step (`slml_native.py`, run after the image's pip install):
real ELF files, real ldd. A library nothing provides fails the build naming it; one a
wheel vendors beside its user is found; a donor's copy is shipped and registered."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from slml.bundle import image_native

SCIPY_LIBS = Path(sysconfig.get_paths()["platlib"]) / "scipy.libs"
pytestmark = pytest.mark.skipif(not shutil.which("ldd") or not SCIPY_LIBS.is_dir(),
                                reason="needs ldd and scipy's vendored libraries")


def gfortran() -> Path:
    return sorted(SCIPY_LIBS.glob("libgfortran-*.so*"))[0]


def needed_quadmath(lib: Path) -> str:
    """The vendored libquadmath ``lib`` names (ldd of it alone cannot find it)."""
    out = subprocess.run(["ldd", str(lib)], capture_output=True, text=True).stdout
    return next(line.split()[0] for line in out.splitlines() if "libquadmath" in line)


def test_a_library_nothing_provides_is_missing_with_its_package(tmp_path: Path) -> None:
    (tmp_path / "pkg.libs").mkdir()
    shutil.copy(gfortran(), tmp_path / "pkg.libs")
    missing = image_native.missing_libraries([tmp_path])
    assert missing == {needed_quadmath(gfortran()): {"pkg.libs"}}
    code = image_native.main([str(tmp_path)])
    assert code == 1


def test_a_vendored_sibling_is_not_missing(tmp_path: Path) -> None:
    (tmp_path / "pkg.libs").mkdir()
    shutil.copy(gfortran(), tmp_path / "pkg.libs")
    shutil.copy(SCIPY_LIBS / needed_quadmath(gfortran()), tmp_path / "pkg.libs")
    assert image_native.missing_libraries([tmp_path]) == {}
    assert image_native.main([str(tmp_path)]) == 0


def test_a_donors_vendored_copy_is_found_by_its_stem(tmp_path: Path) -> None:
    (tmp_path / "scikit_learn.libs").mkdir()
    (tmp_path / "scikit_learn.libs" / "libgomp-e985bcbb.so.1.0.0").write_bytes(b"\x7fELF")
    found = image_native.vendored_copy(tmp_path, "libgomp.so.1")
    assert found is not None and found.name == "libgomp-e985bcbb.so.1.0.0"
    assert image_native.vendored_copy(tmp_path, "libquadmath.so.0") is None
