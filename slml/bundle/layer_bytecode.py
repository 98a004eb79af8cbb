"""Bytecode in the Lambda layer where a cold start reads it, and only bytecode there.

The layer is compiled whole (bytecode.py: the runtime's exact interpreter,
unchecked-hash, ``/opt/python`` paths), then that interpreter walks the model's
*frameworks* inside the layer (bytecode_only.py, ``shrink``): every ``.pyc`` it did not
read is deleted, and the modules whose ``.pyc`` it read ship as bytecode only
(``NAME.pyc`` where ``NAME.py`` was), once importing the frameworks again without those
sources proved it; else their sources stay, with a note saying why. The frameworks are
the distributions the model requires that no other required distribution depends on
(scikit-learn for a scikit-learn model, onnxruntime for an ONNX export); the walk
imports them and every public submodule below them, and loading and predicting with a
model of those frameworks imports a subset of that (the iris model's Lambda init reads
no layer source, tests/bundle/test_lambda_bytecode.py).

Safe: a module without bytecode imports from its source, which ships; it is compiled
in memory if a function ever imports it (``/opt`` is read-only). A sourceless module
was imported at build, by the same interpreter, from the same files. Lock-keyed and
model-independent: the walk depends on the layer's files and the requirement names
(both in the layer's cache key), not on the model, so a model-only change reuses the
layer byte for byte.

Every module keeps its bytecode and its source (a note says why) when the walk cannot
tell: ``aws.bytecode: full``, the layer's machine is not this one's (arm64 code on
x86_64), no required distribution is installed, a framework does not import here (a
wheel for a newer glibc than this host's, say), the walk reads nothing, fails or runs
past ``WALK_TIMEOUT``. ``requirements.source_code: keep`` keeps every source and the
bytecode the walk read.
"""

from __future__ import annotations

import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path

from slml.bundle.bytecode import Interpreter, compile_tree
from slml.bundle.bytecode_only import Shrunk, WalkUnavailable, shrink
from slml.bundle.uvtool import Runner
from slml.units import human

_MACHINES = {"x86_64": ("x86_64", "amd64"), "arm64": ("aarch64", "arm64")}


def foreign_machine(machine: str | None) -> str | None:
    """Why code for ``machine`` (Lambda's name: x86_64, arm64) cannot run here, or None."""
    here = platform.machine().lower()
    if machine is None or here in _MACHINES.get(machine, (machine,)):
        return None
    return f"{machine} code cannot run on this {here} machine to see what the frameworks import"


def compile_layer(
    interpreter: Interpreter, root: Path, *, lambda_path: str, requirements: Sequence[str],
    full: bool = False, keep_sources: bool = False, lib: Path | None = None,
    machine: str | None = None, runner: Runner = subprocess.run,
) -> list[str]:  # fmt: skip
    """Compile every module under ``root`` (code objects naming ``lambda_path``), then
    keep bytecode only for what importing the frameworks of ``requirements`` reads, as
    bytecode only once proved (with its source when ``keep_sources``; every module's
    bytecode and source when ``full`` or when the walk cannot tell). Returns the build
    notes. Raises PackagingError when compileall itself fails."""
    compiled = compile_tree(interpreter, root, lambda_path=lambda_path, runner=runner)
    notes = _failed_note(interpreter, compiled.failed)
    try:
        if full:
            raise WalkUnavailable("aws.bytecode: full")
        foreign = foreign_machine(machine)
        if foreign:
            raise WalkUnavailable(foreign)
        done = shrink(interpreter.path, root, requirements, lib=lib, keep_sources=keep_sources,
                      runner=runner)  # fmt: skip
    except WalkUnavailable as why:
        return [*notes, f"bytecode for every module: {why.reason}"]
    return [*notes, summary(done)]


def summary(done: Shrunk) -> str:
    """What ``shrink`` kept, removed and made sourceless, and why sources stayed."""
    its = "its" if len(done.roots) == 1 else "their"
    trimmed = done.trimmed
    line = (
        f"bytecode for the {trimmed.kept_files} modules that importing {', '.join(done.roots)}"
        f" and {its} public modules reads ({human(trimmed.kept_bytes)}); the other "
        f"{trimmed.removed_files} ship as source only (-{human(trimmed.removed_bytes)}), "
        "compiled in memory if ever imported (aws.bytecode: full keeps them all); "
    )
    if done.kept_sources:
        return line + f"every source kept: {done.kept_sources}"
    return line + (
        f"{done.sourceless} of them ship as bytecode only (-{human(done.source_bytes)} of "
        "source), proved by importing the frameworks again without it "
        "(requirements.source_code: keep ships every source)"
    )


def _failed_note(interpreter: Interpreter, failed: tuple[str, ...]) -> list[str]:
    """A note for sources that did not compile (Python 2 files some packages ship)."""
    if not failed:
        return []
    shown = ", ".join(failed[:3]) + (", ..." if len(failed) > 3 else "")
    return [
        f"{len(failed)} source files do not compile under Python "
        f"{interpreter.minor} ({shown}): shipped as source only"
    ]
