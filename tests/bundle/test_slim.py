"""Slimming removes caches and nested test suites, keeps metadata and top-level names."""

from __future__ import annotations

from pathlib import Path

from slml.bundle.slim import slim


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_slim_removes_what_is_never_used_and_keeps_the_rest(tmp_path):
    keep = [
        touch(tmp_path / "pkg/__init__.py"),
        touch(tmp_path / "pkg/testing/__init__.py"),  # numpy.testing-style: imported
        touch(tmp_path / "pkg/_core.so", b"\x7fELF" + b"\0" * 100),
        touch(tmp_path / "pkg-1.0.dist-info/RECORD"),
        touch(tmp_path / "tests/__init__.py"),  # top level: may be a real package name
        touch(tmp_path / "notapkg/tests/data.txt"),  # parent is not a package
    ]
    gone = [
        touch(tmp_path / "pkg/__pycache__/x.cpython-312.pyc"),
        touch(tmp_path / "pkg/old.pyc"),
        touch(tmp_path / "pkg/_fast.pyx"),  # Cython source: compiled into _fast.so
        touch(tmp_path / "pkg/_fast.pxd"),
        touch(tmp_path / "pkg/__init__.pyi"),  # type stub: for type checkers only
        touch(tmp_path / "pkg/tests/test_a.py", b"yy"),
        touch(tmp_path / "pkg/sub/__init__.py").parent / "test",
    ]
    touch(gone[-1] / "test_b.py")
    report = slim(tmp_path)
    assert all(p.exists() for p in keep)
    assert not any(p.exists() for p in gone)
    assert report.removed_files == 7 and report.removed_bytes == 8
    assert slim(tmp_path).removed_files == 0  # idempotent
