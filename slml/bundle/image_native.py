"""Shared libraries in a container image: every one the installed packages need is there.

The Debian slim base carries glibc, libgcc and libstdc++ but no OpenMP runtime, and
LightGBM's wheel links ``libgomp.so.1`` without shipping it (its docs say to install it),
so a LightGBM model's image would fail at its first import with "cannot open shared
object file". Standard library only: the image's dependency layer runs this file as
``python slml_native.py --sources requirements.lock --donor LIBRARY=REQUIREMENT`` right
after its pip install, as root. It asks ``ldd`` which libraries each installed
extension module cannot find. A missing one with a donor is taken from the donor
wheel's vendored copy (auditwheel's ``<dist>.libs/<stem>-<hash>.so*``; scikit-learn's
wheel vendors libgomp), installed with pip into a scratch directory without its
dependencies, and copied under its plain name to ``/usr/local/lib/slml``, which the
image's ``LD_LIBRARY_PATH`` names (as Lambda's layer ``lib/`` is ``/opt/lib``); nothing
else of the donor stays. Any other missing library fails the build, naming the package
and the library, instead of an image that fails when it starts.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

# on the image's LD_LIBRARY_PATH (its Dockerfile sets it): a vendored copy keeps its
# hashed SONAME, so ldconfig's cache would not map the plain name to it
LIB_DIR = Path("/usr/local/lib/slml")


def missing_libraries(roots: list[Path]) -> dict[str, set[str]]:
    """Library name → the packages (top-level directories) whose modules cannot find it."""
    missing: dict[str, set[str]] = {}
    files = [(root, p) for root in roots for p in sorted(root.rglob("*.so*"))
             if p.is_file() and not p.is_symlink()]  # fmt: skip
    # a wheel's vendored libraries find each other by the loader's RPATH, which ldd of
    # the library alone does not see: a name shipped anywhere here is not missing
    shipped = {p.name for _, p in files}
    for root, path in files:
        done = subprocess.run(["ldd", str(path)], capture_output=True, text=True,
                              check=False)  # fmt: skip
        for line in done.stdout.splitlines():
            name, _, where = line.strip().partition(" => ")
            if where.strip() == "not found" and name.strip() not in shipped:
                missing.setdefault(name.strip(), set()).add(path.relative_to(root).parts[0])
    return missing


def vendored_copy(root: Path, library: str) -> Path | None:
    stem = library.split(".so")[0]
    return next((p for p in sorted(root.glob(f"*.libs/{stem}-*.so*")) if p.is_file()), None)


def provide(library: str, donor: str, *, sources: list[str], lib_dir: Path = LIB_DIR) -> Path:
    """Copy ``library`` from the ``donor`` wheel's vendored copy into ``lib_dir``;
    ``sources``: the lock's package-source lines (``--index-url ...``), used for it too."""
    with tempfile.TemporaryDirectory(prefix="slml-donor-") as scratch:
        wanted = Path(scratch) / "donor.txt"
        wanted.write_text("".join(f"{line}\n" for line in [*sources, donor]), "utf-8")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                        "--only-binary=:all:", "--no-cache-dir", "--target",
                        f"{scratch}/site", "-r", str(wanted)], check=True)  # fmt: skip
        copy = vendored_copy(Path(scratch) / "site", library)
        if copy is None:
            raise SystemExit(f"slml: {donor}'s wheel has no copy of {library}")
        lib_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(copy, lib_dir / library)
    return lib_dir / library


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="provide the shared libraries installed "
                                     "packages need and the image lacks")
    parser.add_argument("--donor", action="append", default=[], metavar="LIBRARY=REQUIREMENT")
    parser.add_argument("--sources", type=Path, help="a requirements file whose option "
                        "lines (--index-url ...) the donors are installed with")
    parser.add_argument("dirs", nargs="*", type=Path, help="default: site-packages")
    args = parser.parse_args(argv)
    donors = dict(d.split("=", 1) for d in args.donor)
    paths = sysconfig.get_paths()
    roots = list(args.dirs) or sorted({Path(paths["purelib"]), Path(paths["platlib"])})
    missing = missing_libraries(roots)
    unmet = {lib: pkgs for lib, pkgs in missing.items() if lib not in donors}
    if unmet:
        for lib, pkgs in sorted(unmet.items()):
            print(f"slml: {', '.join(sorted(pkgs))} needs {lib}, which neither the "
                  "packages nor the base image provide", file=sys.stderr)
        return 1
    sources = ([line.strip() for line in args.sources.read_text("utf-8").splitlines()
                if line.strip().startswith("-")] if args.sources else [])  # fmt: skip
    for lib, pkgs in sorted(missing.items()):
        where = provide(lib, donors[lib], sources=sources)
        print(f"slml: {', '.join(sorted(pkgs))} needs {lib}: shipped {where} from "
              f"{donors[lib]}'s wheel")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
