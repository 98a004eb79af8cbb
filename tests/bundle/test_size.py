"""Sizes per distribution and deterministic zips."""

from __future__ import annotations

import hashlib
import os
import zipfile

from slml.bundle.size import measure, package_sizes, zip_dir


def test_sizes_group_by_distribution(tmp_path):
    (tmp_path / "numpy").mkdir()
    (tmp_path / "numpy/a.so").write_bytes(b"1" * 100)
    (tmp_path / "numpy.libs").mkdir()
    (tmp_path / "numpy.libs/b.so").write_bytes(b"2" * 50)
    info = tmp_path / "numpy-2.0.dist-info"
    info.mkdir()
    (info / "RECORD").write_text("numpy/a.so,,\nnumpy.libs/b.so,,\nnumpy-2.0.dist-info/RECORD,,\n")
    (tmp_path / "six.py").write_bytes(b"3" * 10)
    sizes = dict(package_sizes(tmp_path))
    assert sizes["numpy"] == 150 + (info / "RECORD").stat().st_size and sizes["six.py"] == 10
    report = measure(tmp_path, top=1)
    assert report.unzipped == sum(sizes.values()) and report.largest[0][0] == "numpy"


def test_zip_is_deterministic_with_prefix(tmp_path):
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg/mod.py").write_text("x = 1\n")
    (src / "run").write_text("#!/bin/sh\n")
    os.chmod(src / "run", 0o755)
    first = zip_dir(src, tmp_path / "a.zip", prefix="python/")
    os.utime(src / "pkg/mod.py", (0, 0))  # mtimes do not matter
    second = zip_dir(src, tmp_path / "b.zip", prefix="python/")
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (first, second)]
    assert digest[0] == digest[1]
    with zipfile.ZipFile(first) as zf:
        assert zf.namelist() == ["python/pkg/mod.py", "python/run"]
        assert (zf.getinfo("python/run").external_attr >> 16) & 0o777 == 0o755
