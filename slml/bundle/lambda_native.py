"""Native libraries in a Lambda layer: every ``DT_NEEDED`` met on the target.

Lambda's base images carry little beyond glibc, libgcc and libstdc++
(``base_libraries.toml``). ``ship_native_libraries(python_dir, lib_dir, runtime=)``
checks every ELF file the layer ships; a library that is needed but neither shipped
nor on the base image is either

- shipped: when it is one slml knows how to provide (``VENDORED``) and the layer
  already holds a copy a wheel vendored (auditwheel's ``<dist>.libs/<stem>-<hash>.so.*``),
  that copy goes to ``lib_dir/<name>``; the layer zip carries ``lib/`` beside
  ``python/``, Lambda mounts it at ``/opt/lib``, which is on ``LD_LIBRARY_PATH``.
  The case that matters: LightGBM's ``lib_lightgbm.so`` needs ``libgomp.so.1``, which
  the LightGBM wheel does not ship, and scikit-learn's wheel vendors one;
- or the build fails (IncompatibleWheel) naming the package and the library.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from slml.bundle.elf import base_libraries, missing_library_error, unmet_needs
from slml.bundle.size import add_file, files_under

# needed library → the file-name stem of vendored copies that can stand in for it
VENDORED = {"libgomp.so.1": "libgomp"}


def base_name(runtime: str) -> str:
    """The base-library table for a Lambda runtime (python3.11 runs on Amazon Linux 2)."""
    return "lambda-al2" if runtime == "python3.11" else "lambda-al2023"


def _vendored_copy(root: Path, stem: str) -> Path | None:
    for path in sorted(root.glob(f"*.libs/{stem}-*.so*")):
        if path.is_file():
            return path
    return None


def ship_native_libraries(python_dir: Path, lib_dir: Path, *, runtime: str) -> list[str]:
    """Check the layer's ``DT_NEEDED`` libraries, copy the ones slml provides into
    ``lib_dir``; returns notes. Raises IncompatibleWheel for any other missing one."""
    base = base_name(runtime)
    unmet = unmet_needs([python_dir], base=base_libraries(base))
    notes = []
    for library in sorted({u.library for u in unmet if u.library in VENDORED}):
        copy = _vendored_copy(python_dir, VENDORED[library])
        if copy is None:
            continue
        lib_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(copy, lib_dir / library)
        needers = sorted({u.package for u in unmet if u.library == library})
        notes.append(
            f"shipped {library} in the layer's lib/ (/opt/lib) for {', '.join(needers)}: "
            f"Lambda's base image has none (copy of {copy.relative_to(python_dir)})"
        )
    missing = [u for u in unmet if not (lib_dir / u.library).is_file()]
    if missing:
        raise missing_library_error(missing, target=f"Lambda {runtime}")
    return notes or [f"every shared library the layer needs is shipped or on Lambda {runtime}"]


def zip_layer_extras(zf_path: Path, lib_dir: Path) -> None:
    """Append ``lib_dir``'s files under ``lib/`` to the layer zip at ``zf_path``."""
    if not lib_dir.is_dir():
        return
    with zipfile.ZipFile(zf_path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in files_under(lib_dir, bytecode=False):
            add_file(zf, path, "lib/" + path.relative_to(lib_dir).as_posix())
