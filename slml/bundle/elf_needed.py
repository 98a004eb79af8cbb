"""``DT_NEEDED``: the shared libraries an ELF file asks the dynamic loader for.

``dynamic(path)`` reads an ELF64 little-endian file's ``PT_DYNAMIC`` segment (stdlib
``struct``, a few seeks, never the whole file): its ``DT_NEEDED`` names and ``DT_SONAME``.
String-table addresses are mapped to file offsets through the ``PT_LOAD`` segments.
Files that are not ELF64 little-endian, or have no dynamic section (static binaries,
object files), give empty results.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

PT_LOAD, PT_DYNAMIC = 1, 2
DT_NULL, DT_NEEDED, DT_STRTAB, DT_STRSZ, DT_SONAME = 0, 1, 5, 10, 14


@dataclass(frozen=True)
class Dynamic:
    needed: tuple[str, ...] = ()
    soname: str | None = None


def _segments(fh: BinaryIO, phoff: int, phentsize: int, phnum: int) -> list[tuple[int, ...]]:
    """``(p_type, p_offset, p_vaddr, p_filesz)`` of every program header."""
    out: list[tuple[int, ...]] = []
    for i in range(phnum):
        fh.seek(phoff + i * phentsize)
        p_type, _flags, offset, vaddr, _paddr, filesz = struct.unpack("<IIQQQQ", fh.read(40))
        out.append((p_type, offset, vaddr, filesz))
    return out


def _file_offset(loads: list[tuple[int, ...]], vaddr: int) -> int | None:
    for _type, offset, start, size in loads:
        if start <= vaddr < start + size:
            return offset + vaddr - start
    return None


def dynamic(path: Path) -> Dynamic:
    """The ``DT_NEEDED`` names and ``DT_SONAME`` of the ELF file at ``path``."""
    with open(path, "rb") as fh:
        head = fh.read(64)
        if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            return Dynamic()
        phoff, = struct.unpack("<Q", head[32:40])
        phentsize, phnum = struct.unpack("<HH", head[54:58])
        segments = _segments(fh, phoff, phentsize, phnum)
        dyn = next((s for s in segments if s[0] == PT_DYNAMIC), None)
        if dyn is None:
            return Dynamic()
        fh.seek(dyn[1])
        raw = fh.read(dyn[3])
        entries = [struct.unpack_from("<qQ", raw, i) for i in range(0, len(raw) - 15, 16)]
        tags: dict[int, list[int]] = {}
        for tag, value in entries:
            if tag == DT_NULL:
                break
            tags.setdefault(tag, []).append(value)
        loads = [s for s in segments if s[0] == PT_LOAD]
        strtab = _file_offset(loads, tags.get(DT_STRTAB, [0])[0])
        if strtab is None:
            return Dynamic()
        size = tags.get(DT_STRSZ, [0])[0]
        fh.seek(strtab)
        table = fh.read(size)

    def name(offset: int) -> str:
        return table[offset : table.index(b"\0", offset)].decode(errors="replace")

    soname = tags.get(DT_SONAME)
    return Dynamic(tuple(name(o) for o in tags.get(DT_NEEDED, [])),
                   name(soname[0]) if soname else None)  # fmt: skip
