"""elf_strip: shared libraries lose their symbol tables and debug info and still load.

Real files throughout: a C extension compiled here with debug info (``cc -g``) is
stripped and then imported by a fresh interpreter; a layout whose dropped sections lie
between segments (what patchelf leaves) is left byte for byte as it was."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from slml.bundle import elf_strip

SOURCE = r"""
#include <Python.h>
static int helper(int x) { return x * 7; }
static PyObject *seven(PyObject *self, PyObject *arg) {
    return PyLong_FromLong(helper((int)PyLong_AsLong(arg)));
}
static PyMethodDef methods[] = {{"seven", seven, METH_O, "x * 7"}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "tiny", NULL, -1, methods};
PyMODINIT_FUNC PyInit_tiny(void) { return PyModule_Create(&module); }
"""


def _sections(path: Path) -> dict[str, int]:
    """Section name → size, as binutils' readelf reads the file (it fails on a bad one)."""
    out = subprocess.run(["readelf", "-SW", str(path)], check=True, capture_output=True,
                         text=True).stdout  # fmt: skip
    sizes = {}
    for line in out.splitlines():
        if "]" in line and line.strip().startswith("["):
            fields = line.split("]", 1)[1].split()
            if len(fields) >= 5 and fields[0] != "Name":
                sizes[fields[0]] = int(fields[4], 16)
    return sizes


@pytest.fixture(scope="module")
def extension(tmp_path_factory) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or shutil.which("readelf") is None:
        pytest.skip("needs a C compiler and readelf (binutils)")
    root = tmp_path_factory.mktemp("ext")
    (root / "tiny.c").write_text(SOURCE)
    target = root / f"tiny{sysconfig.get_config_var('EXT_SUFFIX')}"
    include = f"-I{sysconfig.get_paths()['include']}"
    subprocess.run([compiler, "-g", "-O1", "-shared", "-fPIC", include, str(root / "tiny.c"),
                    "-o", str(target)], check=True)  # fmt: skip
    return target


def _imports(directory: Path) -> str:
    code = "import sys; sys.path.insert(0, sys.argv[1]); import tiny; print(tiny.seven(6))"
    return subprocess.run([sys.executable, "-I", "-c", code, str(directory)], check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip


def test_a_stripped_extension_loses_symbols_and_debug_info_and_still_imports(extension, tmp_path):
    work = tmp_path / "lib"
    work.mkdir()
    copy = Path(shutil.copy(extension, work / extension.name))
    copy.chmod(0o755)
    before = _sections(copy)
    assert before[".symtab"] > 0 and any(name.startswith(".debug") for name in before)
    report = elf_strip.strip_tree(work)
    after = _sections(copy)
    saved = extension.stat().st_size - copy.stat().st_size
    assert report.files == 1 and report.saved_bytes == saved > 0
    assert after[".symtab"] == after[".strtab"] == 0
    assert all(size == 0 for name, size in after.items() if name.startswith(".debug"))
    assert after[".dynsym"] == before[".dynsym"] and after[".text"] == before[".text"]
    assert copy.stat().st_mode & 0o777 == 0o755
    assert _imports(work) == "42"
    assert elf_strip.strip_tree(work).files == 0  # idempotent: nothing left to drop
    assert sorted(p.name for p in work.iterdir()) == [extension.name]  # no temp file left


def test_segments_keep_every_byte_at_its_offset(extension):
    """All but e_shoff (bytes 40-47 of the header, which the first segment maps): the
    section header table moved, and the loader never reads where it is."""
    data = extension.read_bytes()
    smaller = bytearray(elf_strip.stripped(data) or b"")
    assert smaller and smaller[40:48] != data[40:48]
    smaller[40:48] = data[40:48]
    head = elf_strip.EHDR.unpack_from(data)
    phoff, phnum = head[5], head[10]
    for i in range(phnum):
        fields = elf_strip.PHDR.unpack_from(data, phoff + i * elf_strip.PHDR.size)
        offset, size = fields[2], fields[5]
        assert smaller[offset:offset + size] == data[offset:offset + size]  # fmt: skip


def test_a_dropped_section_between_segments_leaves_the_file_alone(extension):
    """As patchelf lays files out: a segment after the symbol table. Moved here by making
    the last program header map the whole file, the symbol table is inside a segment."""
    data = bytearray(extension.read_bytes())
    head = elf_strip.EHDR.unpack_from(data)
    last = head[5] + (head[10] - 1) * elf_strip.PHDR.size
    fields = list(elf_strip.PHDR.unpack_from(data, last))
    fields[2], fields[5] = 0, len(data)  # p_offset 0, p_filesz the whole file
    elf_strip.PHDR.pack_into(data, last, *fields)
    assert elf_strip.stripped(bytes(data)) is None


@pytest.mark.parametrize("data", [
    b"", b"not an elf at all", b"\x7fELF\x01\x01" + b"\0" * 60,  # 32-bit
    b"\x7fELF\x02\x02" + b"\0" * 60,  # big-endian
], ids=["empty", "text", "elf32", "big-endian"])  # fmt: skip
def test_what_it_does_not_rewrite_is_returned_as_none(data):
    assert elf_strip.stripped(data) is None


def test_object_files_keep_their_symbols(extension, tmp_path):
    obj = tmp_path / "tiny.o"
    subprocess.run([shutil.which("cc") or "gcc", "-g", "-c", "-fPIC",
                    f"-I{sysconfig.get_paths()['include']}", str(extension.with_name("tiny.c")),
                    "-o", str(obj)], check=True)  # fmt: skip
    assert struct.unpack_from("<H", obj.read_bytes(), 16)[0] == 1  # ET_REL
    assert elf_strip.stripped(obj.read_bytes()) is None


def test_the_command_line_strips_a_directory(extension, tmp_path, capsys):
    shutil.copy(extension, tmp_path / extension.name)
    assert elf_strip.main([str(tmp_path)]) == 0
    assert "stripped 1 native binaries" in capsys.readouterr().out
