"""Incremental builds: reuse a previous output when the inputs it was made from are
unchanged, and extend a cached dependency zip instead of re-zipping it.

A build writes a ``BuildRecord`` beside its output (``<output>.inputs.json``): the digest
of every input (lock, model manifest, rendered templates, runtime source, ...), the
size and mtime of each output file, and whatever the build wants back (a size report).
``load_record(path)`` reads it; ``record.current(inputs)`` is true only when the inputs
match AND every recorded output is still there, untouched. A build deletes its record
(``forget``) before it starts rewriting, so an interrupted build is never reused.

``zip_onto(base, src, dest)`` copies a (cached, deterministic) zip and appends ``src``'s
files with the conventions of ``size.zip_dir``: sorted entries, fixed timestamps,
normalised modes, so equal inputs still give equal bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slml.bundle.size import add_file, files_under
from slml.bundle.staging import staging_path, sweep

RECORD_SUFFIX = ".inputs.json"


def digest(*parts: str | bytes) -> str:
    """sha256 over ``parts``, each length-prefixed (so ("ab", "c") != ("a", "bc"))."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        h.update(f"{len(data)}:".encode())
        h.update(data)
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """sha256 of one file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def tree_digest(root: Path) -> str:
    """sha256 over the relative paths and bytes of every file under ``root`` (bytecode
    caches and ``*.pyc`` left out, as bundles leave them out)."""
    root = Path(root)
    parts: list[str] = []
    for path in files_under(root):
        if path.suffix in (".pyc", ".pyo"):
            continue
        parts += [path.relative_to(root).as_posix(), file_digest(path)]
    return digest(*parts)


def runtime_digest() -> str:
    """What ``copy_runtime`` would write: slml's version and the runtime's source
    (hashed on each call, ~1 ms: a long-lived process may see the source change)."""
    import slml
    from slml.bundle.runtime_files import runtime_source

    return digest(slml.__version__, tree_digest(runtime_source()))


def artifact_inputs(artifact_dir: Path) -> str:
    """A digest of a model artifact, cheap after ``verify_files``: the manifest's bytes
    (which hold every listed file's sha256) and each file's path, size and mtime."""
    from slml.runtime.manifest import MANIFEST_FILE

    root = Path(artifact_dir)
    parts: list[str | bytes] = [(root / MANIFEST_FILE).read_bytes()]
    for path in files_under(root):
        st = path.stat()
        parts.append(f"{path.relative_to(root).as_posix()}:{st.st_size}:{st.st_mtime_ns}")
    return digest(*parts)


def record_path(output: Path) -> Path:
    """Where the record of ``output`` (a file or directory) lives: beside it."""
    output = Path(output)
    return output.with_name(output.name + RECORD_SUFFIX)


def _stamp(path: Path) -> list[int] | None:
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns] if Path(path).is_file() else [0, 0]


@dataclass(frozen=True)
class BuildRecord:
    """The inputs digest an output was built from, its outputs' stamps, and data."""

    inputs: str
    outputs: dict[str, list[int]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    def current(self, inputs: str) -> bool:
        """True when built from ``inputs`` and every output is unchanged since
        (files: same size and mtime; directories: still present)."""
        if inputs != self.inputs:
            return False
        return all(_stamp(Path(p)) == stamp for p, stamp in self.outputs.items())


def load_record(path: Path) -> BuildRecord | None:
    """The record at ``path``; None when missing or unreadable (then nothing is reused)."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        return BuildRecord(inputs=raw["inputs"], outputs=raw["outputs"], data=raw["data"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_record(
    path: Path, *, inputs: str, outputs: Sequence[Path], data: dict[str, Any]
) -> BuildRecord:
    """Write (atomically) the record of a finished build. Call it last."""
    stamps = {str(p): _stamp(p) for p in outputs}
    missing = [p for p, s in stamps.items() if s is None]
    if missing:
        raise FileNotFoundError(f"cannot record outputs that do not exist: {missing}")
    record = BuildRecord(inputs=inputs, outputs=stamps, data=data)  # type: ignore[arg-type]
    tmp = staging_path(Path(path))
    payload = {"inputs": inputs, "outputs": stamps, "data": data}
    tmp.write_text(json.dumps(payload, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
    return record


def forget(path: Path) -> None:
    """Delete a record (before rewriting its outputs)."""
    Path(path).unlink(missing_ok=True)


def reuse_or_build(output: Path, inputs: str, build: Callable[[], Sequence[Path]]) -> bool:
    """Keep ``output`` when its record is current for ``inputs``; else forget the record,
    run ``build`` (which returns the paths to stamp) and record it. True when reused."""
    record_file = record_path(output)
    prior = load_record(record_file)
    if prior is not None and prior.current(inputs):
        return True
    forget(record_file)
    save_record(record_file, inputs=inputs, outputs=build(), data={})
    return False


def _entries(src: Path, exclude: Collection[str]) -> Iterable[Path]:
    for path in files_under(src):
        if path.relative_to(src).parts[0] not in exclude:
            yield path


def zip_onto(base: Path, src: Path, dest: Path, *, exclude: Collection[str] = ()) -> Path:
    """Write ``dest``: a copy of the zip ``base`` with every file under ``src`` appended
    (top-level entries named in ``exclude`` left out), sorted, with fixed timestamps and
    normalised modes as ``size.zip_dir`` writes them. Atomic. Raises ValueError when an
    appended name is already in ``base`` (a zip must not hold two entries of one name)."""
    src, dest = Path(src), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sweep(dest.parent)  # what builds killed mid-write left here
    tmp = staging_path(dest)
    shutil.copyfile(base, tmp)
    try:
        with zipfile.ZipFile(tmp, "a", compression=zipfile.ZIP_DEFLATED) as zf:
            taken = set(zf.namelist())
            for path in _entries(src, exclude):
                name = path.relative_to(src).as_posix()
                if name in taken:
                    raise ValueError(f"{name} is in both {base} and {src}")
                add_file(zf, path, name)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


__all__ = [
    "BuildRecord",
    "artifact_inputs",
    "digest",
    "file_digest",
    "forget",
    "load_record",
    "record_path",
    "reuse_or_build",
    "runtime_digest",
    "save_record",
    "tree_digest",
    "zip_onto",
]
