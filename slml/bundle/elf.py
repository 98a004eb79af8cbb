"""Check that every native binary in a directory runs on the target machine.

Every file that starts with the ELF magic is parsed (stdlib ``struct``): it must be
64-bit, little-endian, and for the target's ``e_machine`` (x86_64 = 62, aarch64 = 183).
Native-looking files (``.so``, ``.pyd``, ``.dll``, ``.dylib``) that are Mach-O or PE
(Windows) binaries fail too. The error names the distribution that shipped the file,
found through the ``*.dist-info/RECORD`` files.
"""

from __future__ import annotations

import csv
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from slml.errors import IncompatibleWheel

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
        return f"built for {MACHINE_NAMES.get(binary.machine, f'machine {binary.machine}')}"
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
