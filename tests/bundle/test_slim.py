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
        touch(tmp_path / "pkg/include/pkg/api.h"),  # headers: a JIT may read them
        touch(tmp_path / "pkg/data.a", b"not an archive"),  # named .a, but data
    ]
    gone = [
        touch(tmp_path / "pkg/__pycache__/x.cpython-312.pyc"),
        touch(tmp_path / "pkg/old.pyc"),
        touch(tmp_path / "pkg/_fast.pyx"),  # Cython source: compiled into _fast.so
        touch(tmp_path / "pkg/_fast.pxd"),
        touch(tmp_path / "pkg/__init__.pyi"),  # type stub: for type checkers only
        touch(tmp_path / "pkg/_loss.pyx.tp", b"{{py:"),  # Tempita template of a .pyx
        touch(tmp_path / "pkg/lib/libnpymath.a", b"!<arch>\n"),  # static archive: linkers
        touch(tmp_path / "pkg/tests/test_a.py", b"yy"),
        touch(tmp_path / "pkg/sub/__init__.py").parent / "test",
    ]
    touch(gone[-1] / "test_b.py")
    report = slim(tmp_path)
    assert all(p.exists() for p in keep)
    assert not any(p.exists() for p in gone)
    assert report.removed_files == 9 and report.removed_bytes == 8 + 5 + 8
    assert slim(tmp_path).removed_files == 0  # idempotent


def dist(root: Path, name: str, *requires: str) -> None:
    lines = [f"Name: {name}", *(f"Requires-Dist: {r}" for r in requires)]
    touch(root / f"{name}-1.0.dist-info/METADATA", "\n".join(lines).encode())


def test_lambda_unused_drops_the_serving_stack_unless_something_needs_it(tmp_path):
    from slml.bundle.slim import lambda_unused

    dist(tmp_path, "uvicorn", "click>=7", "h11>=0.8")
    dist(tmp_path, "click")
    dist(tmp_path, "h11")
    dist(tmp_path, "starlette", "anyio<5,>=3.6.2")
    dist(tmp_path, "anyio", "idna>=2.8", "sniffio>=1.1")
    dist(tmp_path, "sniffio")
    dist(tmp_path, "mangum", "typing_extensions")
    dist(tmp_path, "scikit_learn", "numpy>=1.22", "pytest; extra == 'tests'")
    assert lambda_unused(tmp_path, set()) == [
        "anyio", "click", "h11", "mangum", "sniffio", "starlette", "uvicorn",
    ]  # fmt: skip
    # the model pins httpx, which needs anyio (and so sniffio): those stay
    dist(tmp_path, "httpx", "anyio", "certifi")
    assert lambda_unused(tmp_path, {"httpx"}) == ["click", "h11", "mangum", "starlette", "uvicorn"]
    # a model that names uvicorn itself keeps it, and what it needs
    assert lambda_unused(tmp_path, {"httpx", "uvicorn"}) == ["mangum", "starlette"]


def test_drop_lambda_unused_paths_removes_scripts_and_the_lock(tmp_path):
    from slml.bundle.slim import drop_lambda_unused_paths

    touch(tmp_path / "bin/uvicorn")
    touch(tmp_path / "bin/f2py")
    touch(tmp_path / ".lock")
    kept = touch(tmp_path / "numpy/__init__.py")
    report = drop_lambda_unused_paths(tmp_path)
    assert report.removed_files == 3
    assert not (tmp_path / "bin").exists() and not (tmp_path / ".lock").exists()
    assert kept.exists()
    assert drop_lambda_unused_paths(tmp_path).removed_files == 0  # idempotent


def test_the_container_layer_keeps_its_bytecode_as_a_script(tmp_path):
    """What the image's dependency layer runs: ``python slml_slim.py --keep-bytecode``, a
    real process on a copy of the script alone (no slml beside it)."""
    import shutil
    import subprocess
    import sys

    import slml.bundle.slim as module

    kept = [touch(tmp_path / "site/pkg/__init__.py"),
            touch(tmp_path / "site/pkg/__pycache__/__init__.cpython-311.pyc"),
            touch(tmp_path / "site/pkg/mod.pyc")]  # fmt: skip
    gone = [touch(tmp_path / "site/pkg/tests/test_a.py"), touch(tmp_path / "site/pkg/a.pyi"),
            touch(tmp_path / "site/pkg/tests/__pycache__/test_a.cpython-311.pyc")]
    script = shutil.copy(module.__file__, tmp_path / "slml_slim.py")
    done = subprocess.run([sys.executable, "-I", script, "--keep-bytecode", str(tmp_path / "site")],
                          capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "slimmed" in done.stdout and "3 files" in done.stdout
    assert all(p.exists() for p in kept) and not any(p.exists() for p in gone)
    refused = subprocess.run([sys.executable, "-I", script], capture_output=True, text=True)
    assert refused.returncode == 2 and "--site" in refused.stderr
