"""Staging names and the sweep of what killed builds leave (issue 11 D28), on real files.
The SIGKILL of a real build is in test_env.py."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from slml.bundle.incremental import save_record, zip_onto
from slml.bundle.staging import make_staging_dir, staging_path, sweep


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def leftover(final: Path, pid: int) -> Path:
    path = final.with_name(f".{final.name}.tmp-{pid}-0badc0de")
    path.write_bytes(b"half a zip")
    return path


def test_staging_names_are_hidden_unique_and_carry_the_pid(tmp_path: Path) -> None:
    final = tmp_path / "deps.zip"
    a, b = staging_path(final), staging_path(final)
    assert a != b and a.parent == tmp_path and a.name.startswith(".deps.zip.tmp-")
    assert f"-{os.getpid()}-" in a.name
    assert make_staging_dir(final).is_dir()


def test_sweep_removes_dead_builders_entries_and_every_entry_of_the_claimed_name(
    tmp_path: Path,
) -> None:
    pid = dead_pid()
    dead = leftover(tmp_path / "a.zip", pid)
    live = leftover(tmp_path / "b.zip", os.getpid())
    claimed = leftover(tmp_path / "c.zip", os.getpid())
    finished, unrelated = tmp_path / "a.zip", tmp_path / ".a.zip.tmp"
    finished.write_bytes(b"done")
    unrelated.write_bytes(b"not ours")
    assert sorted(sweep(tmp_path, claimed="c.zip")) == sorted([dead, claimed])
    assert live.exists() and finished.exists() and unrelated.exists()
    assert sweep(tmp_path / "missing") == []


def test_zip_onto_sweeps_what_a_killed_write_left(tmp_path: Path) -> None:
    base, src, dest = tmp_path / "base.zip", tmp_path / "src", tmp_path / "out" / "app.zip"
    with zipfile.ZipFile(base, "w") as zf:
        zf.writestr("dep.py", "x = 1\n")
    src.mkdir()
    (src / "app.py").write_text("y = 2\n")
    dest.parent.mkdir()
    stale = leftover(dest, dead_pid())
    zip_onto(base, src, dest)
    assert not stale.exists()
    assert zipfile.ZipFile(dest).namelist() == ["dep.py", "app.py"]
    assert [p.name for p in dest.parent.iterdir()] == ["app.zip"]


def test_save_record_leaves_no_staging_file(tmp_path: Path) -> None:
    out = tmp_path / "out.zip"
    out.write_bytes(b"zip")
    save_record(tmp_path / "out.zip.inputs.json", inputs="i", outputs=[out], data={})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zip", "out.zip.inputs.json"]
