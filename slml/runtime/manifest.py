"""The model artifact format, read side (stdlib only: the runtime ships it).

An artifact is a directory::

    <artifact>/
      slml-model.json      the manifest (below)
      model/...            the serialized model and, for the python flavor, its code

Manifest (JSON object), ``format`` 1::

    name, version            str, str
    flavor                   "sklearn" | "onnx" | "python" | "xgboost" | "lightgbm" |
                             "catboost" | "statsmodels" | "torch" | "keras", or a
                             plug-in's name when flavor_options.loader names its
                             loader ("module:function")
    framework                {"name": str, "version": str}   e.g. scikit-learn 1.9.1
    python_version           "3.11.7"
    requirements             ["scikit-learn==1.9.1", ...] pinned, what the model needs
    signature                {"inputs": Schema, "outputs": Schema | null} | null
    flavor_options           flavor-specific (e.g. {"file": "model/model.joblib"})
    files                    {"model/model.joblib": "<sha256 hex>", ...} every file but
                             the manifest itself, relative POSIX paths. Regular files
                             only: a symlink, FIFO, socket or device anywhere in the
                             artifact is refused; bytecode is no exception (unlisted
                             ``__pycache__``/``.pyc`` files are refused, not skipped)
    created_at, created_by   ISO 8601 UTC, "user@host"
    git_commit               str | null
    slml_version             str
    exported_from            optional: {"flavor", "framework", "parity"} when the model was
                             converted (e.g. scikit-learn → ONNX with a parity check)

Schema (``signature.inputs``/``outputs``)::

    {"kind": "columns", "columns": [{"name": str, "dtype": str}, ...]}
    {"kind": "tensor", "dtype": str, "shape": [-1, 4], "names": [str, ...]?}
                             -1 = any size; optional names label the columns
    optional "nullable": true on a column or a tensor schema lets null/NaN through
    (null becomes NaN for float features); without it the runtime refuses them

dtypes are numpy names: float64, float32, int64, int32, bool, string.

The artifact digest (``artifact_digest``) is the sha256 of the manifest as canonical
JSON; since the manifest lists every file's sha256, it names the whole artifact. It is
what bundles, deployment records and the rollback archive are keyed by, and what
``model_digest: sha256:...`` in slml.yaml pins. The sha256 checks detect corruption
and partial edits; they are not a signature: whoever can write the model file can
write the manifest too. Only a digest pinned somewhere the artifact's writer cannot
reach (slml.yaml under review) makes a swapped artifact fail.

Cold start: paths are strings here (``os.path``; any ``os.PathLike`` is accepted), so
loading a model never imports ``pathlib`` (with ``urllib.parse`` and ``ipaddress``
under it, 3-4 ms); and the first ``SMALL_HASH_BYTES`` a process hashes go through
CPython's built-in SHA-256, slower per byte than OpenSSL's but with no start-up, where
``import hashlib`` starts OpenSSL's library (3-4 ms): a small artifact is verified
before that start would have finished, a large one pays at most those bytes.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from typing import TypeAlias

    StrPath: TypeAlias = str | os.PathLike[str]

MANIFEST_FILE = "slml-model.json"
FORMAT_VERSION = 1
FLAVORS = ("sklearn", "onnx", "python", "xgboost", "lightgbm", "catboost", "statsmodels",
           "torch", "keras")  # fmt: skip
MAX_MANIFEST_BYTES = 16 << 20
DIGEST_PREFIX = "sha256:"
_DIGEST_TAG = b"slml-artifact-digest-1\n"
_CHUNK = 1 << 20
_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device"}  # fmt: skip
# The built-in SHA-256 (215-270 MB/s here) hashes this much before OpenSSL's (1.5 GB/s)
# has started (3-4 ms to import hashlib): the break-even is about 0.9 MB.
SMALL_HASH_BYTES = 512 << 10
_built_in_budget = SMALL_HASH_BYTES  # what the built-in may still hash in this process


class _Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


def sha256(size: int) -> _Hash:
    """A new SHA-256 for ``size`` bytes to come: CPython's built-in one while the
    process has hashed less than ``SMALL_HASH_BYTES`` with it and ``hashlib`` is not
    imported yet, else ``hashlib``'s (OpenSSL). Both give the same digest."""
    global _built_in_budget
    if size <= _built_in_budget and "hashlib" not in sys.modules:
        for name in ("_sha2", "_sha256"):  # CPython 3.12+, 3.11
            try:
                module = __import__(name)
            except ImportError:  # an interpreter built without it
                continue
            _built_in_budget -= size
            built_in: _Hash = module.sha256()
            return built_in
    import hashlib

    return hashlib.sha256()


class ArtifactFormatError(Exception):
    """The directory is not a readable slml artifact (missing or malformed manifest)."""


class ArtifactIntegrityError(ArtifactFormatError):
    """A file's sha256 differs from the manifest's, a listed file is missing or extra, or
    an entry is not a regular file or directory (a symlink, FIFO, socket or device)."""


def open_regular(path: StrPath, rel: str) -> int:
    """A read-only descriptor on ``path``, which must be a regular file and not a
    symlink (checked on the open descriptor, so nothing can be swapped in between and
    a FIFO never blocks). Raises ArtifactIntegrityError; the caller closes it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if os.path.islink(path):
            raise ArtifactIntegrityError(_entry_problem(rel, os.lstat(path).st_mode)) from None
        raise ArtifactIntegrityError(f"{rel} cannot be read: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise ArtifactIntegrityError(_entry_problem(rel, mode))
    return fd


def bounded_chunks(fd: int) -> Any:
    """The file's bytes in chunks, at most its size when opened (bounded: a file that
    grows while read is cut, and its hash then fails)."""
    left = os.fstat(fd).st_size
    while left > 0 and (chunk := os.read(fd, min(_CHUNK, left))):
        left -= len(chunk)
        yield chunk


def read_regular(path: StrPath, rel: str, *, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``path`` (see ``open_regular``), read once.
    Raises ArtifactIntegrityError, or ArtifactFormatError when over ``limit`` bytes."""
    fd = open_regular(path, rel)
    try:
        if limit is not None and os.fstat(fd).st_size > limit:
            raise ArtifactFormatError(f"{rel} is larger than {limit} bytes")
        return b"".join(bounded_chunks(fd))
    finally:
        os.close(fd)


def sha256_file(path: StrPath, rel: str | None = None) -> str:
    """sha256 of a regular file (never follows a symlink, never blocks on a FIFO)."""
    fd = open_regular(path, rel or os.fspath(path))
    try:
        digest = sha256(os.fstat(fd).st_size)
        for chunk in bounded_chunks(fd):
            digest.update(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest()


def _entry_problem(rel: str, mode: int) -> str:
    if stat.S_ISLNK(mode):
        return f"{rel} is a symlink (an artifact holds regular files only; links are not followed)"
    kind = _KINDS.get(stat.S_IFMT(mode), "a special file")
    return f"{rel} is not a regular file ({kind})"


def scan_tree(root: StrPath) -> tuple[list[str], dict[str, str]]:
    """(every regular file under ``root`` but the manifest, {path: problem}): relative
    POSIX paths, sorted; a symlink or special file is a problem and is never followed
    or opened. Bytecode (``__pycache__``, ``.pyc``) is listed like any other file."""
    files: list[str] = []
    problems: dict[str, str] = {}
    pending = [("", os.fspath(root))]  # (relative path with a trailing "/", directory)
    while pending:
        prefix, directory = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                rel = prefix + entry.name
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode):
                    pending.append((rel + "/", entry.path))
                elif not stat.S_ISREG(mode):
                    problems[rel] = _entry_problem(rel, mode)
                elif rel != MANIFEST_FILE:
                    files.append(rel)
    return sorted(files), dict(sorted(problems.items()))


def hash_tree(root: StrPath) -> dict[str, str]:
    """sha256 of every file under ``root`` except the manifest, by relative POSIX path.
    Raises ArtifactIntegrityError for a symlink or special file anywhere under it."""
    files, problems = scan_tree(root)
    if problems:
        raise ArtifactIntegrityError(f"{os.fspath(root)}: " + "; ".join(problems.values()))
    return {rel: sha256_file(os.path.join(root, rel), rel) for rel in files}


def artifact_digest(manifest: dict[str, Any]) -> str:
    """One sha256 for the whole artifact: of its manifest as canonical JSON (sorted keys,
    no whitespace), which holds the sha256 of every file. Name, version, requirements,
    flavor options and every file's content are all covered; formatting is not."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise TypeError("artifact_digest takes the whole manifest (with its files)")
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _digest(_DIGEST_TAG + canonical.encode("utf-8"))


def safe_relative(rel: Any, what: str) -> str:
    """``rel`` if it is a relative POSIX path inside the artifact (no ``..``, no absolute
    path, no empty or ``.`` part), else ArtifactFormatError naming ``what``."""
    if (  # an empty path, "." or "./" is refused by the last test
        not isinstance(rel, str)
        or rel.startswith("/")
        or "\\" in rel
        or any(p in ("", ".", "..") for p in rel.split("/"))
    ):
        raise ArtifactFormatError(
            f"{what} {rel!r} must be a relative path inside the artifact (no '..', not absolute)"
        )
    return rel


def read_manifest(artifact_dir: StrPath) -> dict[str, Any]:
    """Parse and minimally validate the manifest (a regular file, read once, at most
    MAX_MANIFEST_BYTES). Raises ArtifactFormatError."""
    path = os.path.join(artifact_dir, MANIFEST_FILE)
    if not os.path.isdir(artifact_dir):
        raise ArtifactFormatError(f"{artifact_dir} is not a directory (expected a model artifact)")
    if not os.path.lexists(path):
        raise ArtifactFormatError(
            f"{artifact_dir} has no {MANIFEST_FILE}: it is not an slml model artifact "
            "(create one with slml.save_model or `slml save MODEL_FILE`)"
        )
    return parse_manifest(read_regular(path, path, limit=MAX_MANIFEST_BYTES), path)


def parse_manifest(data: bytes, path: StrPath) -> dict[str, Any]:
    """The manifest in ``data`` (read from ``path``), minimally validated."""
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise ArtifactFormatError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise ArtifactFormatError(f"{path} must hold a JSON object")
    missing = [k for k in ("name", "version", "flavor", "files") if k not in manifest]
    if missing:
        raise ArtifactFormatError(f"{path} lacks required keys: {', '.join(missing)}")
    options = manifest.get("flavor_options")
    plugin = isinstance(options, dict) and isinstance(options.get("loader"), str)
    if manifest["flavor"] not in FLAVORS and not plugin:
        raise ArtifactFormatError(
            f"{path}: unknown flavor {manifest['flavor']!r}; expected one of {', '.join(FLAVORS)}"
        )
    if manifest.get("format", FORMAT_VERSION) > FORMAT_VERSION:
        raise ArtifactFormatError(
            f"{path} uses artifact format {manifest['format']}, newer than this slml reads "
            f"({FORMAT_VERSION}); upgrade slml"
        )
    _check_files(path, manifest["files"])
    return manifest


def _check_files(path: StrPath, files: Any) -> None:
    if not isinstance(files, dict) or not all(
        isinstance(v, str) and len(v) == 64 for v in files.values()
    ):
        raise ArtifactFormatError(f"{path}: files must map relative paths to sha256 hex digests")
    for rel in files:
        safe_relative(rel, f"{path}: listed file")


def shape_problems(artifact_dir: StrPath, manifest: dict[str, Any]) -> list[str]:
    """What is wrong with the tree, before any file is hashed: symlinks and special
    files, listed files that are missing, files that are not listed."""
    present, odd = scan_tree(artifact_dir)
    expected: dict[str, str] = manifest["files"]
    found = set(present)
    problems = list(odd.values())
    problems += [f"{rel} is missing" for rel in sorted(expected) if rel not in found | set(odd)]
    problems += [f"{rel} is not listed in the manifest" for rel in present if rel not in expected]
    return problems


def integrity_error(artifact_dir: StrPath, problems: list[str]) -> ArtifactIntegrityError:
    return ArtifactIntegrityError(
        f"model artifact {os.fspath(artifact_dir)} failed its integrity check (refusing to "
        "load it: model files can run code): " + "; ".join(problems) + _bytecode_hint(problems)
    )


def verify_files(artifact_dir: StrPath, manifest: dict[str, Any]) -> None:
    """Check every file against its recorded sha256. Pickles are code: a mismatch, a
    missing or unlisted file (bytecode included), a symlink or a special file raises
    ArtifactIntegrityError before any load. Nothing is followed, nothing blocks."""
    root = artifact_dir
    problems = shape_problems(root, manifest)
    if not problems:  # hash only a tree that holds exactly the listed files
        for rel, digest in sorted(manifest["files"].items()):
            actual = sha256_file(os.path.join(root, rel), rel)
            if actual != digest:
                problems.append(f"{rel} has sha256 {actual[:12]}…, expected {digest[:12]}…")
    if problems:
        raise integrity_error(root, problems)


def _bytecode_hint(problems: list[str]) -> str:
    if any("__pycache__" in p or ".pyc " in p for p in problems):
        return (
            ". Unlisted bytecode is refused (Python would run it instead of the listed "
            "source); if an older slml wrote it when loading the model in place, delete "
            "the __pycache__ directories"
        )
    return ""


def read_listed(artifact_dir: StrPath, manifest: dict[str, Any], rel: str) -> bytes:
    """The bytes of ``rel``, read once and checked against the manifest's sha256 when it
    is listed, so what a flavor deserialises is what was verified (nothing can be
    swapped in between). Refuses symlinks and special files; raises
    ArtifactIntegrityError / ArtifactFormatError."""
    safe_relative(rel, f"{artifact_dir}: flavor file")
    data = read_regular(os.path.join(artifact_dir, rel), rel)
    expected = (manifest.get("files") or {}).get(rel)
    if expected is not None and _digest(data) != expected:
        raise ArtifactIntegrityError(
            f"model artifact {artifact_dir} failed its integrity check: {rel} changed "
            "after it was verified (its sha256 no longer matches the manifest)"
        )
    return data


def _digest(data: bytes) -> str:
    digest = sha256(len(data))
    digest.update(data)
    return digest.hexdigest()
