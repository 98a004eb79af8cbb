"""Drop the symbol table and debug sections of shared libraries, never what runs.

A wheel's extension modules often carry their full symbol table (``.symtab`` and its
``.strtab``: names of every static function, for debuggers and profilers) and sometimes
DWARF debug info (``.debug_*``; uvloop's loop module is 13 MB, 11.7 MB of it DWARF).
The dynamic loader never reads either: it works from the program headers and the
dynamic symbols (``.dynsym``), which stay. Dropping them is what ``strip
--strip-unneeded`` does to a shared library, and what serverless-python-requirements'
``slim`` does with ``strip``.

This module is a careful subset of that, in the standard library only, so the container
image's dependency layer can run it too (``python slml_strip.py --site``), where no
binutils exist. Its one rule: **every byte a segment maps stays where it is.** A file is
rewritten only when it is a 64-bit little-endian shared object or executable whose
non-allocated sections and section header table all lie after the last byte of every
segment; those sections are laid out again from there, the dropped ones emptied (their
headers stay, with size 0, so no section index changes and ``sh_link``/``st_shndx``
still hold). Any other layout is left alone, which covers patchelf's habit of appending
a segment after the sections (the cause of "strip broke my library" reports); so are
object files and archives, which need their symbols to be linked. A file is replaced
atomically (written beside it, then renamed), keeping its mode. Idempotent.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import sysconfig
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ELF_MAGIC = b"\x7fELF"
ELFCLASS64, ELFDATA2LSB = 2, 1
ET_EXEC, ET_DYN = 2, 3
SHT_SYMTAB, SHT_STRTAB, SHT_NOBITS = 2, 3, 8
SHF_ALLOC = 0x2
SHN_LORESERVE = 0xFF00
EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
PHDR = struct.Struct("<IIQQQQQQ")
SHDR = struct.Struct("<IIQQQQIIQQ")


@dataclass(frozen=True)
class StripReport:
    files: int
    saved_bytes: int


@dataclass
class _Section:
    index: int
    name: str
    type: int
    flags: int
    offset: int
    size: int
    link: int
    align: int
    raw: list[int]


def _align(value: int, alignment: int) -> int:
    alignment = max(alignment, 1)
    return (value + alignment - 1) // alignment * alignment


def _sections(data: bytes, shoff: int, shnum: int, shentsize: int, shstrndx: int) -> list[_Section]:
    raws = [list(SHDR.unpack_from(data, shoff + i * shentsize)) for i in range(shnum)]
    names_at, names_size = raws[shstrndx][4], raws[shstrndx][5]
    names = data[names_at:names_at + names_size]  # fmt: skip
    out = []
    for index, raw in enumerate(raws):
        end = names.find(b"\0", raw[0])
        name = names[raw[0]:end if end >= 0 else None].decode("latin-1")  # fmt: skip
        out.append(_Section(index, name, raw[1], raw[2], raw[4], raw[5], raw[6], raw[8], raw))
    return out


def _dropped(sections: list[_Section], shstrndx: int) -> set[int]:
    """The symbol table, the string table only it uses, and debug sections."""
    drop = {s.index for s in sections
            if s.type == SHT_SYMTAB or s.name.startswith((".debug", ".zdebug"))}  # fmt: skip
    for table in [s for s in sections if s.type == SHT_SYMTAB]:
        others = {s.link for s in sections if s.index not in drop}
        own = table.link != shstrndx and table.link not in others
        if own and 0 < table.link < len(sections) and sections[table.link].type == SHT_STRTAB:
            drop.add(table.link)
    return {i for i in drop if sections[i].size and not sections[i].flags & SHF_ALLOC}


def stripped(data: bytes) -> bytes | None:
    """``data`` without its symbol table and debug sections, or None when there is
    nothing to drop or the file is not one this module rewrites (see the module)."""
    if len(data) < EHDR.size or data[:4] != ELF_MAGIC:
        return None
    if data[4] != ELFCLASS64 or data[5] != ELFDATA2LSB:
        return None
    head = EHDR.unpack_from(data)
    e_type, phoff, shoff, phentsize, phnum, shentsize, shnum, shstrndx = (
        head[1], head[5], head[6], head[9], head[10], head[11], head[12], head[13])  # fmt: skip
    if e_type not in (ET_EXEC, ET_DYN) or not shoff or not shnum or shstrndx >= SHN_LORESERVE:
        return None
    if shentsize != SHDR.size or phentsize != PHDR.size or shoff + shnum * shentsize > len(data):
        return None
    segments_end = phoff + phnum * phentsize
    for i in range(phnum):
        fields = PHDR.unpack_from(data, phoff + i * phentsize)
        segments_end = max(segments_end, fields[2] + fields[5])  # p_offset + p_filesz
    try:
        sections = _sections(data, shoff, shnum, shentsize, shstrndx)
    except (struct.error, IndexError):
        return None
    drop = _dropped(sections, shstrndx)
    if not drop or shoff < segments_end:
        return None
    moved = sorted((s for s in sections if s.offset >= segments_end and s.type != SHT_NOBITS
                    and s.index != 0), key=lambda s: s.offset)  # fmt: skip
    for s in sections:
        in_file = s.type != SHT_NOBITS and s.size and s.index != 0
        mapped = in_file and s.offset < segments_end
        if mapped and (s.index in drop or s.offset + s.size > segments_end):
            return None  # a dropped section inside a segment, or one straddling its end
        if in_file and s.offset + s.size > len(data):
            return None
    out = bytearray(data[:segments_end])
    for s in moved:
        if s.index in drop:
            s.raw[4], s.raw[5] = len(out), 0
            continue
        start = _align(len(out), s.align)
        out += b"\0" * (start - len(out))
        out += data[s.offset:s.offset + s.size]  # fmt: skip
        s.raw[4] = start
    table = _align(len(out), 8)
    out += b"\0" * (table - len(out))
    for s in sections:
        out += SHDR.pack(*s.raw)
    EHDR.pack_into(out, 0, *head[:6], table, *head[7:])
    return bytes(out) if len(out) < len(data) else None


def strip_file(path: Path) -> int:
    """Rewrite ``path`` in place when :func:`stripped` applies; the bytes saved."""
    data = path.read_bytes()
    smaller = stripped(data)
    if smaller is None:
        return 0
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".strip")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(smaller)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(data) - len(smaller)


def _candidates(root: Path) -> Iterable[Path]:
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            if name.endswith(".so") or ".so." in name:
                path = Path(dirpath) / name
                if not path.is_symlink() and path.is_file():
                    yield path


def strip_tree(root: Path) -> StripReport:
    """Strip every shared library (``*.so``, ``*.so.*``) under ``root``; a hard-linked
    file is rewritten as a file of its own, so its other names keep the original."""
    files = saved = 0
    for path in _candidates(Path(root)):
        gained = strip_file(path)  # stripped() checks the magic: a non-ELF file gains 0
        if gained:
            files, saved = files + 1, saved + gained
    return StripReport(files=files, saved_bytes=saved)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("roots", nargs="*", type=Path)
    parser.add_argument("--site", action="store_true", help="this interpreter's site-packages")
    args = parser.parse_args(argv)
    roots = list(args.roots) + ([Path(sysconfig.get_paths()["purelib"])] if args.site else [])
    for root in roots:
        report = strip_tree(root)
        print(f"stripped {report.files} native binaries under {root}: "
              f"{report.saved_bytes / 2**20:.1f} MB of symbols and debug info")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
