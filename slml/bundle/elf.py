"""Check that every native binary in a directory runs on the target machine.

Every file that starts with the ELF magic is parsed (stdlib ``struct``): it must be
64-bit, little-endian, and for the target's ``e_machine`` (x86_64 = 62, aarch64 = 183).
Native-looking files (``.so``, ``.pyd``, ``.dll``, ``.dylib``) that are Mach-O or PE
(Windows) binaries fail too. The error names the distribution that shipped the file,
found through the ``*.dist-info/RECORD`` files.

``unmet_needs`` / ``check_needed`` go one step further: every ``DT_NEEDED`` library of
every ELF file must be shipped (some shipped file has that name or ``SONAME``) or be
on the target's base image, as listed with its source in ``base_libraries.toml``.
"""

from __future__ import annotations

import csv
import os
import struct
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from slml.bundle.elf_needed import dynamic
from slml.errors import IncompatibleWheel

BASE_LIBRARIES = Path(__file__).with_name("base_libraries.toml")

ELF_MAGIC = b"\x7fELF"
MACHINES = {"x86_64": 62, "amd64": 62, "arm64": 183, "aarch64": 183}
MACHINE_NAMES = {62: "x86_64", 183: "aarch64", 3: "i386", 40: "arm (32-bit)", 243: "riscv"}
MACHO_MAGICS = {
    b"\xfe\xed\xfa\xce", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
}  # fmt: skip
NATIVE_SUFFIXES = (".so", ".pyd", ".dll", ".dylib")


@dataclass(frozen=True)
class Binary:
    path: str  # relative POSIX path
    kind: str  # "elf", "mach-o", "pe"
    machine: int | None = None
    bits: int | None = None
    little_endian: bool | None = None


def read_elf_header(head: bytes) -> tuple[int, bool, int]:
    """``(bits, little_endian, e_machine)`` from the first 20 bytes of an ELF file."""
    bits = {1: 32, 2: 64}.get(head[4], 0)
    little = head[5] == 1
    (machine,) = struct.unpack("<H" if little else ">H", head[18:20])
    return bits, little, machine


def classify(path: Path, rel: str) -> Binary | None:
    """What kind of native binary ``path`` is, or None when it is not one."""
    with open(path, "rb") as fh:
        head = fh.read(20)
    if head[:4] == ELF_MAGIC and len(head) >= 20:
        bits, little, machine = read_elf_header(head)
        return Binary(rel, "elf", machine, bits, little)
    if not rel.lower().endswith(NATIVE_SUFFIXES) and ".so." not in rel:
        return None
    if head[:4] in MACHO_MAGICS:
        return Binary(rel, "mach-o")
    if head[:2] == b"MZ":
        return Binary(rel, "pe")
    return None


def record_owners(root: Path) -> dict[str, str]:
    """Relative file path → distribution name, from every ``*.dist-info/RECORD``."""
    owners: dict[str, str] = {}
    for record in Path(root).glob("*.dist-info/RECORD"):
        dist = record.parent.name.split("-")[0]
        with open(record, newline="", encoding="utf-8") as fh:
            for row in csv.reader(fh):
                if row:
                    owners[os.path.normpath(row[0]).replace(os.sep, "/")] = dist
    return owners


def scan(root: Path) -> list[Binary]:
    """Every native binary under ``root``, sorted by path."""
    root = Path(root)
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            full = Path(dirpath) / name
            if full.is_symlink() or not full.is_file():
                continue
            binary = classify(full, full.relative_to(root).as_posix())
            if binary:
                found.append(binary)
    return sorted(found, key=lambda b: b.path)


def _problem(binary: Binary, want: int) -> str | None:
    if binary.kind == "mach-o":
        return "a macOS (Mach-O) binary"
    if binary.kind == "pe":
        return "a Windows (PE) binary"
    if binary.bits != 64 or not binary.little_endian:
        return f"a {binary.bits}-bit {'little' if binary.little_endian else 'big'}-endian ELF"
    if binary.machine != want:
        name = MACHINE_NAMES.get(binary.machine) if binary.machine is not None else None
        return f"built for {name or f'machine {binary.machine}'}"
    return None


def check_binaries(root: Path, *, machine: str) -> int:
    """Raise IncompatibleWheel naming the package(s) whose binaries do not run on
    ``machine`` (``x86_64`` or ``arm64``/``aarch64``); else return how many were checked."""
    if machine not in MACHINES:
        raise ValueError(f"unknown machine {machine!r}; expected one of {sorted(MACHINES)}")
    want = MACHINES[machine]
    binaries = scan(root)
    owners = record_owners(root)
    bad = [(b, p) for b in binaries if (p := _problem(b, want))]
    if not bad:
        return len(binaries)
    lines = [f"{owners.get(b.path, b.path.split('/')[0])}: {b.path} is {p}" for b, p in bad[:10]]
    packages = sorted({owners.get(b.path, b.path.split("/")[0]) for b, _ in bad})
    raise IncompatibleWheel(
        f"{', '.join(packages)} ship(s) binaries that do not run on Linux {machine}:\n  "
        + "\n  ".join(lines),
        hint="the wheel was built for another platform: check the lock's platform, or pin a "
        "version of the package that publishes manylinux wheels for this architecture",
    )


def base_libraries(base: str) -> frozenset[str]:
    """The libraries target base image ``base`` (a table of base_libraries.toml) has."""
    tables = tomllib.loads(BASE_LIBRARIES.read_text(encoding="utf-8"))
    return frozenset(tables[base]["libraries"])


@dataclass(frozen=True)
class Unmet:
    """``path`` (shipped by ``package``) needs ``library``, which nothing provides."""

    library: str
    package: str
    path: str


def unmet_needs(roots: Sequence[Path], *, base: frozenset[str]) -> list[Unmet]:
    """Every ``DT_NEEDED`` of every ELF file under ``roots`` that is neither shipped
    under one of them (by file name or ``SONAME``) nor in ``base``; sorted."""
    shipped: set[str] = set()
    needs: list[Unmet] = []
    for root in map(Path, roots):
        owners = record_owners(root)
        for binary in scan(root):
            if binary.kind != "elf":
                continue
            info = dynamic(root / binary.path)
            shipped.add(binary.path.rsplit("/", 1)[-1])
            shipped.update([info.soname] if info.soname else [])
            package = owners.get(binary.path, binary.path.split("/")[0])
            needs += [Unmet(name, package, binary.path) for name in info.needed]
    unmet = {n for n in needs if n.library not in shipped and n.library not in base}
    return sorted(unmet, key=lambda n: (n.package, n.library, n.path))


def missing_library_error(unmet: Sequence[Unmet], *, target: str) -> IncompatibleWheel:
    """The error for libraries no one ships: package and library, first of each."""
    lines = [f"{u.package}: {u.path} needs {u.library}" for u in unmet[:10]]
    pairs = sorted({(u.package, u.library) for u in unmet})
    what = ", ".join(f"{package} needs {library}" for package, library in pairs)
    return IncompatibleWheel(
        f"{what}, which neither the bundle nor {target}'s base image provides "
        "(it would fail at start with \"cannot open shared object file\"):\n  "
        + "\n  ".join(lines),
        hint="pin a version of the package whose wheel bundles the library, or deploy a "
        "container image that installs it",
    )
