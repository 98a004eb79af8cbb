"""DT_NEEDED checks on real ELF files from real wheels (LightGBM's lib_lightgbm.so,
scikit-learn's vendored libgomp): parsing, what is unmet against a target's base
library list, shipping the vendored libgomp for Lambda, and the error for the rest."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from slml.bundle.elf import base_libraries, unmet_needs
from slml.bundle.elf_needed import dynamic
from slml.bundle.lambda_native import DONORS, ship_native_libraries
from slml.errors import IncompatibleWheel

lightgbm = pytest.importorskip("lightgbm")
sklearn = pytest.importorskip("sklearn")
LIB_LIGHTGBM = Path(lightgbm.__file__).parent / "lib" / "lib_lightgbm.so"
SKLEARN_LIBS = Path(sklearn.__file__).parent.parent / "scikit_learn.libs"


def ship(root: Path, dist: str, files: dict[str, Path]) -> None:
    """Copy real files into ``root`` as distribution ``dist`` (with a RECORD)."""
    info = root / f"{dist}-1.0.dist-info"
    info.mkdir(parents=True)
    for rel, source in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, root / rel)
    (info / "RECORD").write_text("".join(f"{rel},,\n" for rel in files))


def test_needed_and_soname_of_a_real_shared_library():
    info = dynamic(LIB_LIGHTGBM)
    assert info.soname == "lib_lightgbm.so"
    assert {"libgomp.so.1", "libstdc++.so.6", "libc.so.6"} <= set(info.needed)


def test_non_elf_and_static_files_need_nothing(tmp_path):
    (tmp_path / "x.so").write_bytes(b"not an ELF file at all, just text " * 4)
    assert dynamic(tmp_path / "x.so").needed == ()


def test_the_base_lists_are_data_with_their_source():
    al2023 = base_libraries("lambda-al2023")
    assert {"libc.so.6", "libstdc++.so.6", "libgcc_s.so.1"} <= al2023
    assert "libgomp.so.1" not in al2023  # the known Lambda failure


def test_lightgbm_alone_needs_libgomp_on_lambda(tmp_path):
    ship(tmp_path, "lightgbm", {"lightgbm/lib/lib_lightgbm.so": LIB_LIGHTGBM})
    unmet = unmet_needs([tmp_path], base=base_libraries("lambda-al2023"))
    assert [(u.package, u.library) for u in unmet] == [("lightgbm", "libgomp.so.1")]


def test_an_unmet_library_fails_naming_package_and_library(tmp_path):
    ship(tmp_path, "lightgbm", {"lightgbm/lib/lib_lightgbm.so": LIB_LIGHTGBM})
    with pytest.raises(IncompatibleWheel) as caught:
        ship_native_libraries(tmp_path, tmp_path / "lib", runtime="python3.12")
    message = str(caught.value)
    assert "lightgbm needs libgomp.so.1" in message
    assert "lightgbm/lib/lib_lightgbm.so" in message and "hint:" in message
    assert not (tmp_path / "lib").exists()


def test_a_vendored_libgomp_is_shipped_under_lib(tmp_path):
    vendored = next(SKLEARN_LIBS.glob("libgomp-*.so*"))
    ship(tmp_path, "lightgbm", {"lightgbm/lib/lib_lightgbm.so": LIB_LIGHTGBM})
    ship(tmp_path, "scikit_learn", {f"scikit_learn.libs/{vendored.name}": vendored})
    notes = ship_native_libraries(tmp_path, tmp_path / "lib", runtime="python3.12")
    assert (tmp_path / "lib" / "libgomp.so.1").read_bytes() == vendored.read_bytes()
    assert "libgomp.so.1" in notes[0] and "lightgbm" in notes[0]


def test_without_a_copy_in_the_layer_the_donor_wheels_copy_is_shipped(tmp_path):
    vendored = next(SKLEARN_LIBS.glob("libgomp-*.so*"))
    layer = tmp_path / "layer"
    ship(layer, "lightgbm", {"lightgbm/lib/lib_lightgbm.so": LIB_LIGHTGBM})
    asked = []

    def fetch(requirement: str, dest: Path) -> Path:  # what install_one does, offline
        asked.append(requirement)
        ship(dest, "scikit_learn", {f"scikit_learn.libs/{vendored.name}": vendored})
        return dest

    notes = ship_native_libraries(layer, tmp_path / "lib", runtime="python3.12", fetch=fetch)
    assert asked == [DONORS["libgomp.so.1"]]
    assert (tmp_path / "lib" / "libgomp.so.1").read_bytes() == vendored.read_bytes()
    assert f"from {DONORS['libgomp.so.1']}'s wheel" in notes[0]
    assert not list(layer.glob("scikit_learn*"))  # nothing else of the donor is shipped


def test_a_donor_without_the_library_still_fails_naming_it(tmp_path):
    ship(tmp_path, "lightgbm", {"lightgbm/lib/lib_lightgbm.so": LIB_LIGHTGBM})
    with pytest.raises(IncompatibleWheel, match=r"lightgbm needs libgomp\.so\.1"):
        ship_native_libraries(tmp_path, tmp_path / "lib", runtime="python3.12",
                              fetch=lambda requirement, dest: dest)  # fmt: skip


def test_a_vendored_copy_satisfies_its_hashed_name(tmp_path):
    vendored = next(SKLEARN_LIBS.glob("libgomp-*.so*"))
    ship(tmp_path, "scikit_learn", {f"scikit_learn.libs/{vendored.name}": vendored})
    assert unmet_needs([tmp_path], base=base_libraries("lambda-al2023")) == []
