"""ELF checks on hand-made headers (every field the check reads) and RECORD ownership."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from slml.bundle.elf import check_binaries, read_elf_header, record_owners, scan
from slml.errors import IncompatibleWheel


def elf(machine: int, *, bits: int = 64, little: bool = True) -> bytes:
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if little else 2, 1]) + b"\0" * 9
    return ident + struct.pack("<HH" if little else ">HH", 3, machine) + b"\0" * 44


def make_dist(root: Path, dist: str, files: dict[str, bytes]) -> None:
    info = root / f"{dist}-1.0.dist-info"
    info.mkdir(parents=True)
    rows = []
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        rows.append(f"{rel},sha256=x,{len(data)}")
    (info / "RECORD").write_text("\n".join([*rows, f"{info.name}/RECORD,,"]) + "\n")


def test_header_fields():
    assert read_elf_header(elf(62)) == (64, True, 62)
    assert read_elf_header(elf(183, little=False)) == (64, False, 183)


def test_matching_binaries_pass_and_are_counted(tmp_path):
    files = {
        "fastlib/_core.cpython-312-x86_64-linux-gnu.so": elf(62),
        "fastlib/__init__.py": b"",
        "fastlib.libs/libx.so.1": elf(62),
    }
    make_dist(tmp_path, "fastlib", files)
    assert check_binaries(tmp_path, machine="x86_64") == 2


@pytest.mark.parametrize(
    ("data", "name", "words"),
    [
        (elf(183), "_core.so", "built for aarch64"),
        (elf(62, bits=32), "_core.so", "32-bit"),
        (b"\xcf\xfa\xed\xfe" + b"\0" * 28, "_core.so", "macOS (Mach-O)"),
        (b"MZ" + b"\0" * 62, "_core.pyd", "Windows (PE)"),
    ],
)
def test_wrong_binaries_fail_naming_the_package(tmp_path, data, name, words):
    make_dist(tmp_path, "badpkg", {f"badpkg/{name}": data, "badpkg/__init__.py": b""})
    with pytest.raises(IncompatibleWheel) as info:
        check_binaries(tmp_path, machine="x86_64")
    assert "badpkg" in info.value.message and words in info.value.message
    assert f"badpkg/{name}" in info.value.message and info.value.hint


def test_arm64_wants_aarch64(tmp_path):
    make_dist(tmp_path, "p", {"p/a.so": elf(183)})
    assert check_binaries(tmp_path, machine="arm64") == 1
    with pytest.raises(IncompatibleWheel, match="built for aarch64"):
        check_binaries(tmp_path, machine="x86_64")


def test_text_files_named_like_binaries_are_ignored_unless_magic(tmp_path):
    (tmp_path / "notes.txt").write_bytes(b"MZ is not a binary here")
    (tmp_path / "script").write_bytes(elf(62))  # an ELF executable without suffix is checked
    assert [b.path for b in scan(tmp_path)] == ["script"]


def test_record_owners_maps_files_to_distributions(tmp_path):
    make_dist(tmp_path, "scikit_learn", {"sklearn/__init__.py": b""})
    assert record_owners(tmp_path)["sklearn/__init__.py"] == "scikit_learn"


def test_unknown_machine_is_a_programming_error(tmp_path):
    with pytest.raises(ValueError):
        check_binaries(tmp_path, machine="sparc")
