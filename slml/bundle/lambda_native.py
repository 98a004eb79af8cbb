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
- fetched: when the layer holds no copy (a native LightGBM ``model.txt`` needs no
  scikit-learn), ``fetch`` installs the wheel that vendors one (``DONORS``: scikit-learn's,
  for the target's platform, without its dependencies) into a scratch directory, and its
  copy is shipped the same way; nothing else of that wheel is;
- or the build fails (IncompatibleWheel) naming the package and the library.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from slml.bundle.elf import base_libraries, missing_library_error, unmet_needs
from slml.bundle.size import add_file, files_under

# needed library → the file-name stem of vendored copies that can stand in for it
VENDORED = {"libgomp.so.1": "libgomp"}
# needed library → a wheel that vendors a copy (the version slml's constraints test)
DONORS = {"libgomp.so.1": "scikit-learn==1.9.1"}
Fetch = Callable[[str, Path], Path]  # (requirement, scratch dir) -> where it is installed


def base_name(runtime: str) -> str:
    """The base-library table for a Lambda runtime (python3.11 runs on Amazon Linux 2)."""
    return "lambda-al2" if runtime == "python3.11" else "lambda-al2023"


def _vendored_copy(root: Path, stem: str) -> Path | None:
    for path in sorted(root.glob(f"*.libs/{stem}-*.so*")):
        if path.is_file():
            return path
    return None


def ship_native_libraries(python_dir: Path, lib_dir: Path, *, runtime: str,
                          fetch: Fetch | None = None) -> list[str]:
    """Check the layer's ``DT_NEEDED`` libraries, copy the ones slml provides into
    ``lib_dir`` (from the layer, else through ``fetch`` from their ``DONORS`` wheel);
    returns notes. Raises IncompatibleWheel for any other missing one, and
    PackagingError when the donor wheel cannot be installed."""
    base = base_name(runtime)
    unmet = unmet_needs([python_dir], base=base_libraries(base))
    notes = []
    with tempfile.TemporaryDirectory(prefix="slml-donor-") as scratch:
        for library in sorted({u.library for u in unmet if u.library in VENDORED}):
            copy, root = _vendored_copy(python_dir, VENDORED[library]), python_dir
            source = "copy of {}"
            if copy is None and fetch is not None and library in DONORS:
                root = fetch(DONORS[library], Path(scratch) / library)
                copy = _vendored_copy(root, VENDORED[library])
                source = f"{{}} from {DONORS[library]}'s wheel"
            if copy is None:
                continue
            lib_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(copy, lib_dir / library)
            needers = sorted({u.package for u in unmet if u.library == library})
            notes.append(
                f"shipped {library} in the layer's lib/ (/opt/lib) for {', '.join(needers)}: "
                f"Lambda's base image has none ({source.format(copy.relative_to(root))})"
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
