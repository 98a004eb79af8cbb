"""The container image's dependency layer: the scripts its RUN line runs after pip, and
the prediction of its size here.

The layer (templates/container/Dockerfile.j2) installs the lock with pip, then runs
standard-library scripts copied into the build context, with the image's own
interpreter, in the same RUN layer: ``slml_native.py`` (image_native.py: every shared
library the packages need is there), ``slml_slim.py`` (slim.py: no test suites, stubs,
Cython sources), ``slml_strip.py`` (elf_strip.py: no symbol tables) and
``slml_bytecode.py`` (bytecode_only.py: the .pyc pip wrote that importing the model's
and the runtime's frameworks does not read go, and the modules it reads ship as bytecode
only once importing them again proves it; with ``requirements.source_code: keep`` every
source stays). ``measure_dependencies`` predicts the layer's size by doing the same here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from slml.bundle import bytecode_only, elf_strip, image_native
from slml.bundle import slim as slim_module
from slml.bundle.bytecode_only import WalkUnavailable, requirement_name, shrink
from slml.bundle.lock import Lock, runtime_requirements
from slml.bundle.uvtool import Runner, run_uv

# Bookworm ships glibc 2.36: wheels up to manylinux_2_36 run there.
LOCK_PLATFORM = "x86_64-manylinux_2_36"
SCRIPTS: dict[str, ModuleType] = {
    "slml_slim.py": slim_module,
    "slml_native.py": image_native,
    "slml_strip.py": elf_strip,
    "slml_bytecode.py": bytecode_only,
}


def script_texts() -> dict[str, str]:
    """The scripts the dependency layer runs, by their name in the build context."""
    return {name: Path(module.__file__ or "").read_text("utf-8") for name, module in
            SCRIPTS.items()}  # fmt: skip


@dataclass(frozen=True)
class LayerSteps:
    """What the dependency layer's scripts do after pip: the bytecode walk imports the
    frameworks among ``names`` (requirement names; none: no walk, every module keeps its
    bytecode and source); ``keep_sources``: every module keeps its source;
    ``keep_symbols``: the shared libraries are not stripped (slml_strip.py does not run)."""

    names: tuple[str, ...] = ()
    keep_sources: bool = False
    keep_symbols: bool = False

    @classmethod
    def of(
        cls, model_requirements: Sequence[str], *, keep_sources: bool = False,
        keep_symbols: bool = False,
    ) -> LayerSteps:  # fmt: skip
        """The model's requirement names and the serving runtime's (uvicorn and what it
        serves with), sorted."""
        names = [*model_requirements, *runtime_requirements()]
        return cls(tuple(sorted({requirement_name(r) for r in names})), keep_sources,
                   keep_symbols)  # fmt: skip

    def arguments(self) -> str:
        """``slml_bytecode.py``'s arguments after ``--site --lock``."""
        return " ".join([*(["--keep-sources"] if self.keep_sources else []), *self.names])


def tree_size(root: Path) -> int:
    """Bytes of every regular file under ``root``."""
    return sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())


def _top_entries(root: Path, count: int = 10) -> tuple[tuple[str, int], ...]:
    sizes = []
    for entry in Path(root).iterdir():
        if entry.name.endswith(".dist-info") or entry.name == "bin":
            continue
        size = tree_size(entry) if entry.is_dir() else entry.stat().st_size
        sizes.append((entry.name, size))
    return tuple(sorted(sizes, key=lambda item: -item[1])[:count])


def measure_dependencies(
    lock: Lock,
    *,
    python_version: str,
    cache_dir: Path,
    bytecode: bool = True,
    steps: LayerSteps = LayerSteps(),
    runner: Runner = subprocess.run,
) -> tuple[int, tuple[tuple[str, int], ...]]:
    """Install the lock for linux x86_64 into a temporary directory with uv, as the
    Dockerfile's pip layer would, slim (and strip, unless ``steps.keep_symbols``) it as
    the layer does and return (bytes, ten largest packages). pip writes bytecode in the
    image; uv compiles it here too when this interpreter is the target's version, and
    then this interpreter does what slml_bytecode.py does in the image (``steps``; else
    the figure leaves out the .pyc files, ~25% for the iris stack, and keeps every
    source). Cached by lock hash and ``steps`` under ``<cache>/container-sizes``."""
    bytecode = bytecode and python_version == f"{sys.version_info.major}.{sys.version_info.minor}"
    walk = hashlib.sha256(steps.arguments().encode()).hexdigest()[:12]
    suffix = (f"-pyc-walked-{walk}" if bytecode else "") + "-slim"
    suffix += "" if steps.keep_symbols else "-strip"
    cached = Path(cache_dir) / "container-sizes" / f"{lock.hash}-{python_version}{suffix}.json"
    if cached.is_file():
        data = json.loads(cached.read_text("utf-8"))
        return int(data["bytes"]), tuple((n, int(s)) for n, s in data["largest"])
    with tempfile.TemporaryDirectory(prefix="slml-layer-") as tmp:
        args = ["pip", "install", "--target", tmp, "--no-deps", "--only-binary", ":all:"]
        args += ["--python-platform", LOCK_PLATFORM, "--python-version", python_version]
        if bytecode:
            args += ["--compile-bytecode", "--python", sys.executable]
        run_uv([*args, "--quiet", "-r", str(lock.path)], runner=runner)
        slim_module.slim(Path(tmp), keep_bytecode=True)  # as the image's layer does
        if not steps.keep_symbols:
            elf_strip.strip_tree(Path(tmp))
        if bytecode and steps.names:
            _walk(Path(tmp), steps)
        total, largest = tree_size(Path(tmp)), _top_entries(Path(tmp))
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps({"bytes": total, "largest": largest}), "utf-8")
    return total, largest


def _walk(root: Path, steps: LayerSteps) -> None:
    """slml_bytecode.py's work on ``root`` with this interpreter; a walk that cannot
    tell here (a wheel this host cannot load) leaves it as the image would."""
    with contextlib.suppress(WalkUnavailable):
        shrink(sys.executable, root, steps.names, keep_sources=steps.keep_sources)
