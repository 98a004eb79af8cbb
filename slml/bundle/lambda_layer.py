"""The AWS Lambda layer: the locked dependencies, built once per key and cached.

``build_layer`` returns ``<cache>/lambda-layers/<key>/layer.zip`` and its ``python/``
directory, building them when absent: under a file lock, in a staging directory
renamed into place once complete (``notes.json`` last), so a half-built layer is never
reused and two builds never build the same key at once. The key (``layer_key``) is the
lock, the target, the model's requirement names and the bytecode compiler, so a
model-only change reuses the layer byte for byte (Pulumi sees no diff).

Building: uv installs the lock for the runtime's manylinux platform (binary wheels
only); native binaries are checked to be ELF for the target machine and every library
they need is shipped or on Lambda's base image (lambda_native.py, ``lib/``); boto3,
botocore, s3transfer and jmespath are left out when only a transitive dependency pulls
them in (the runtime ships them; a version the model pins ships); serving-only packages
the Lambda adapter never imports go (slim.LAMBDA_UNUSED); then slimming (slim.py),
stripping shared libraries (elf_strip.py) and, with an interpreter, bytecode for what
the model's frameworks import, as bytecode only once proved (layer_bytecode.py; every
module, and every source, with ``full``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from filelock import FileLock

from slml.bundle.bytecode import LAYER_ROOT, Interpreter
from slml.bundle.elf import check_binaries
from slml.bundle.elf_strip import strip_tree
from slml.bundle.install import install_for_target, install_one
from slml.bundle.lambda_native import ship_native_libraries, zip_layer_extras
from slml.bundle.layer_bytecode import compile_layer
from slml.bundle.lock import Lock, Target, requirement_name
from slml.bundle.size import human, zip_dir
from slml.bundle.slim import drop_lambda_unused_paths, lambda_unused, slim
from slml.bundle.staging import make_staging_dir, sweep
from slml.bundle.uvtool import Runner

RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath")


def layer_key(
    lock: Lock, target: Target, interpreter: Interpreter | None = None, *,
    requirements: Sequence[str] = (), full: bool = False, keep_sources: bool = False,
    keep_symbols: bool = False,
) -> str:  # fmt: skip
    """The layer's cache key: the lock, the target, the model's requirement names (they
    decide which serving-only packages stay and which frameworks the bytecode walk
    imports), the bytecode compiler if any, with ``full`` (every module compiled)
    or ``keep_sources`` (the walked modules keep their sources), and ``keep_symbols``
    (the shared libraries are not stripped)."""
    names = ",".join(sorted({requirement_name(r) for r in requirements}))
    data = f"{lock.hash}\n{target.python_version}\n{target.platform or 'host'}\nlayout 6"
    data += f"\nrequires {names}" + ("\nsymbols kept" if keep_symbols else "")
    if interpreter is not None:
        layout = "full" if full else "walked, sources kept" if keep_sources else "walked"
        data += f"\nbytecode {interpreter.version} unchecked-hash {layout}"
    return hashlib.sha256(data.encode()).hexdigest()[:24]


def excluded_runtime_packages(model_requirements: Sequence[str]) -> tuple[str, ...]:
    """The runtime-provided packages to leave out: all but those the model pins."""
    pinned = {requirement_name(r) for r in model_requirements}
    return tuple(p for p in RUNTIME_PROVIDED if p not in pinned)


def _remove_distributions(root: Path, names: Sequence[str]) -> list[str]:
    """Delete installed distributions (their RECORD files and dist-info). Returns names."""
    removed = []
    for info in sorted(root.glob("*.dist-info")):
        dist = requirement_name(info.name.split("-")[0])
        if dist not in names:
            continue
        for line in (info / "RECORD").read_text(encoding="utf-8").splitlines():
            path = root / line.split(",")[0]
            if path.is_file() and root in path.resolve().parents:
                path.unlink()
        shutil.rmtree(info, ignore_errors=True)
        removed.append(dist)
    for top in names:  # empty package directories left behind
        pkg = root / top
        if pkg.is_dir() and not any(p.is_file() for p in pkg.rglob("*")):
            shutil.rmtree(pkg)
    return removed


def build_layer(
    lock: Lock,
    *,
    target: Target,
    machine: str | None,
    exclude: Sequence[str],
    cache_dir: Path,
    runner: Runner = subprocess.run,
    interpreter: Interpreter | None = None,
    keep: Sequence[str] = (),
    full: bool = False,
    keep_sources: bool = False,
    keep_symbols: bool = False,
) -> tuple[Path, Path, bool, list[str]]:
    """The layer for ``lock``: ``(layer.zip, python/ dir, reused, notes)``, cached;
    compiled to bytecode by ``interpreter`` when given (layer_bytecode.py: what the
    frameworks of ``keep`` import, as bytecode only unless ``keep_sources``; every
    module, with its source, if ``full``); its shared libraries stripped of symbol
    tables and debug info unless ``keep_symbols``."""
    key = layer_key(lock, target, interpreter, requirements=keep, full=full,
                    keep_sources=keep_sources, keep_symbols=keep_symbols)  # fmt: skip
    home = Path(cache_dir) / "lambda-layers" / key
    home.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(home) + ".lock"):
        if (home / "notes.json").is_file():
            notes = json.loads((home / "notes.json").read_text(encoding="utf-8"))
            return home / "layer.zip", home / "python", True, notes
        notes = _stage_layer(
            lock, home, target=target, machine=machine, exclude=exclude, runner=runner,
            interpreter=interpreter, keep=keep, full=full, keep_sources=keep_sources,
            keep_symbols=keep_symbols,
        )  # fmt: skip
    return home / "layer.zip", home / "python", False, notes


def _stage_layer(
    lock: Lock,
    home: Path,
    *,
    target: Target,
    machine: str | None,
    exclude: Sequence[str],
    runner: Runner,
    interpreter: Interpreter | None,
    keep: Sequence[str] = (),
    full: bool = False,
    keep_sources: bool = False,
    keep_symbols: bool = False,
) -> list[str]:
    """Install, check, slim, compile and zip into a temp dir, then rename it to ``home``.
    ``keep``: the model's own requirements, never dropped as serving-only, whose
    frameworks decide which bytecode stays (all of it when ``full``) and which modules
    ship as bytecode only (none when ``keep_sources``)."""
    sweep(home.parent)  # what builds killed with SIGKILL left behind
    work = make_staging_dir(home)
    try:
        staged = install_for_target(lock, work / "python", target=target, runner=runner)
        notes = []
        if machine:
            count = check_binaries(staged, machine=machine)
            notes.append(f"checked {count} native binaries: all ELF for Linux {machine}")
            notes += ship_native_libraries(
                staged, work / "lib", runtime=f"python{target.python_version}",
                fetch=lambda requirement, dest: install_one(requirement, dest, target=target,
                                                            runner=runner),
            )  # fmt: skip
        dropped = _remove_distributions(staged, exclude)
        if dropped:
            notes.append(
                f"left out {', '.join(dropped)}: the Lambda runtime provides them and the "
                "model does not pin them"
            )
        unused = _remove_distributions(
            staged, lambda_unused(staged, {requirement_name(r) for r in keep})
        )
        scripts = drop_lambda_unused_paths(staged)
        if unused or scripts.removed_files:
            notes.append(
                f"left out what a Lambda never runs: {', '.join(unused) or 'no packages'}"
                f" (the adapter needs no ASGI server), bin/ and .lock "
                f"({scripts.removed_files} files)"
            )
        report = slim(staged)
        notes.append(
            f"slimmed: removed {report.removed_files} files ({human(report.removed_bytes)})"
        )
        notes.append(_strip(staged, work / "lib", keep_symbols=keep_symbols))
        if interpreter is not None:
            notes += compile_layer(
                interpreter, staged, lambda_path=LAYER_ROOT, requirements=keep, full=full,
                keep_sources=keep_sources, lib=work / "lib", machine=machine, runner=runner,
            )  # fmt: skip
        zip_dir(staged, work / "layer.zip", prefix="python/", bytecode=interpreter is not None)
        zip_layer_extras(work / "layer.zip", work / "lib")
        (work / "notes.json").write_text(json.dumps(notes), encoding="utf-8")
        if home.exists():
            shutil.rmtree(home)
        work.rename(home)  # notes.json last in, so a half-built layer is never reused
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return notes


def _strip(*roots: Path, keep_symbols: bool) -> str:
    """Strip the shared libraries under ``roots`` (elf_strip.py) unless ``keep_symbols``;
    the build's note either way."""
    if keep_symbols:
        return ("kept the native binaries' symbol tables and debug info "
                "(requirements.symbols: keep)")  # fmt: skip
    stripped = [strip_tree(root) for root in roots if root.is_dir()]
    return (f"stripped {sum(r.files for r in stripped)} native binaries of their symbol "
            f"tables and debug info ({human(sum(r.saved_bytes for r in stripped))})")  # fmt: skip
