"""Bundle size per target, zipped and unzipped, against a naive ``pip install --target``
of the same requirements (the model's pinned requirements plus the runtime's own:
starlette, uvicorn, and mangum for Lambda), binary wheels only.

- naive (host): ``pip install --target DIR --only-binary :all: REQS`` for this host.
- naive (Lambda): the same with ``--platform manylinux_2_34_x86_64`` (and the older
  manylinux levels) ``--python-version 3.12 --implementation cp``: what a user would
  upload to python3.12 on x86_64 without slml.
- slml Lambda bundle (``slml build --provider aws``, python3.12 x86_64): the layer
  directory plus the function directory; zipped = layer.zip + function.zip.
- the same for the ONNX export of the same model (``train.py --onnx``): the runtime
  needs onnxruntime instead of scikit-learn and SciPy.
- slml local bundle (``slml build --provider local``): bundle dir + its environment's
  site-packages, against the naive host install.

Everything is counted as shipped, bytecode included (pip compiles ``.pyc`` by default;
slml's local environments precompile too): a directory is the sum of its regular files,
zipped with deflate level 6; the Lambda bundle is the uncompressed total of the entries
in layer.zip + function.zip (what Lambda unpacks and holds to 250 MB) and their file
sizes zipped. The walk is this module's own, so the ratios compare like with like. Sizes are
deterministic: one measurement each (n = 1).

``params.breakdown`` splits each Lambda bundle and the naive Lambda install, unzipped, by
kind (``kind``): shared libraries, bytecode, source, metadata (``*.dist-info``), other.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from benchmarks.common import PYTHON, WORK, env_with, fresh_dir, iris_project, row, slml_cli
from benchmarks.common import write_result as write
from slml.bundle.lock import runtime_requirements

# pip (23.x) matches --platform tags exactly, so list every manylinux level up to 2.34
# (Amazon Linux 2023), as AWS's own instructions do with manylinux2014.
_LEVELS = ("manylinux_2_34", "manylinux_2_28", "manylinux_2_27", "manylinux_2_17",
           "manylinux2014")  # fmt: skip
LAMBDA_PIP = [*(a for level in _LEVELS for a in ("--platform", f"{level}_x86_64")),
              "--python-version", "3.12", "--implementation", "cp"]  # fmt: skip
MB = 1024 * 1024


def _files(root: Path) -> list[Path]:
    out = []
    for dirpath, _dirs, names in os.walk(root):
        out += [Path(dirpath) / n for n in names if not os.path.islink(Path(dirpath) / n)]
    return sorted(out)


def tree_size(*roots: Path) -> int:
    """Bytes of every regular file under ``roots`` (bytecode caches included)."""
    return sum(p.stat().st_size for root in roots for p in _files(root))


def zipped_size(src: Path, scratch: Path) -> int:
    """Bytes of ``src`` zipped with deflate level 6 (every regular file)."""
    dest = scratch / f"{src.name}.zip"
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path in _files(src):
            zf.write(path, path.relative_to(src).as_posix())
    size = dest.stat().st_size
    dest.unlink()
    return size


def unzipped_entries(*zips: Path) -> int:
    """Uncompressed bytes of every entry in ``zips``."""
    total = 0
    for path in zips:
        with zipfile.ZipFile(path) as zf:
            total += sum(info.file_size for info in zf.infolist())
    return total


def kind(name: str) -> str:
    """What a file is, by its path: shared libraries, bytecode, source, metadata, other."""
    base = name.rsplit("/", 1)[-1]
    if ".dist-info/" in name:
        return "metadata"
    if base.endswith((".pyc", ".pyo")):
        return "bytecode"
    if base.endswith(".py"):
        return "source"
    return "shared libraries" if base.endswith(".so") or ".so." in base else "other"


def breakdown(entries: list[tuple[str, int]]) -> dict[str, float]:
    """MB of ``(path, bytes)`` entries by ``kind``, largest first."""
    totals: dict[str, int] = {}
    for name, size in entries:
        totals[kind(name)] = totals.get(kind(name), 0) + size
    return {k: round(v / MB, 2) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def zip_entries(*zips: Path) -> list[tuple[str, int]]:
    out = []
    for path in zips:
        with zipfile.ZipFile(path) as zf:
            out += [(info.filename, info.file_size) for info in zf.infolist()]
    return out


def requirements(artifact: Path, extra: tuple[str, ...]) -> list[str]:
    manifest = json.loads((artifact / "slml-model.json").read_text())
    return [*manifest.get("requirements", []), *runtime_requirements(extra)]


def naive_install(reqs: list[str], dest: Path, *, lambda_target: bool) -> Path:
    """A plain pip install of ``reqs`` into ``dest`` (real pip, binary wheels only)."""
    shutil.rmtree(dest, ignore_errors=True)
    cmd = [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--target", str(dest), "--only-binary", ":all:", *reqs]  # fmt: skip
    if lambda_target:
        cmd[5:5] = LAMBDA_PIP
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return dest


def slml_build(project: Path, provider: str, cache: Path) -> dict[str, Any]:
    env = env_with(SLML_CACHE_DIR=str(cache))
    out = slml_cli(["build", "--provider", provider, "--json"], project=project, env=env)
    return json.loads(out.stdout)


def lambda_sizes(bundle: dict[str, Any], scratch: Path) -> tuple[int, int]:
    zips = (Path(bundle["files"]["layer"]), Path(bundle["files"]["zip"]))
    unzipped = unzipped_entries(*zips)
    zipped = sum(z.stat().st_size for z in zips)
    return unzipped, zipped


def local_sizes(bundle: dict[str, Any], scratch: Path) -> tuple[int, int]:
    env = Path(bundle["files"]["env"])
    site = next(env.glob("lib/python*/site-packages"))
    path = Path(bundle["path"])
    unzipped = tree_size(path, site)
    return unzipped, zipped_size(path, scratch) + zipped_size(site, scratch)


def size_rows(name: str, slml: tuple[int, int], naive: tuple[int, int], baseline: str,
              *, target: bool) -> list[dict[str, Any]]:  # fmt: skip
    t = dict(target="≤ 0.6x", limit=0.6) if target else {}
    return [
        row(f"{name}, unzipped", "MB", [slml[0] / MB], [naive[0] / MB],
            baseline_name=baseline, **t),  # type: ignore[arg-type]
        row(f"{name}, zipped", "MB", [slml[1] / MB], [naive[1] / MB], baseline_name=baseline),
    ]  # fmt: skip


def measure() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows, and the breakdown by kind (for ``params``)."""
    cache = WORK / "cache-bundle-size"
    shutil.rmtree(cache, ignore_errors=True)
    scratch = fresh_dir("bundle-size-scratch")
    sk = iris_project("bundle-size")
    onnx = iris_project("bundle-size-onnx", onnx=True)
    reqs_lambda = requirements(sk / "artifacts" / "iris", ("lambda",))
    reqs_host = requirements(sk / "artifacts" / "iris", ())
    naive, kinds = {}, {}
    for key, reqs, lam in (("lambda", reqs_lambda, True), ("host", reqs_host, False)):
        path = naive_install(reqs, scratch / f"naive-{key}", lambda_target=lam)
        naive[key] = (tree_size(path), zipped_size(path, scratch))
        if lam:
            entries = [(p.relative_to(path).as_posix(), p.stat().st_size) for p in _files(path)]
            kinds["naive pip --target, python3.12 x86_64"] = breakdown(entries)
    builds = {"sklearn": slml_build(sk, "aws", cache),
              "ONNX export": slml_build(onnx, "aws", cache)}  # fmt: skip
    for name, bundle in builds.items():
        zips = (Path(bundle["files"]["layer"]), Path(bundle["files"]["zip"]))
        kinds[f"Lambda bundle ({name})"] = breakdown(zip_entries(*zips))
    aws_sk = lambda_sizes(builds["sklearn"], scratch)
    aws_onnx = lambda_sizes(builds["ONNX export"], scratch)
    local_sk = local_sizes(slml_build(sk, "local", cache), scratch)
    lam_base = "naive pip --target, python3.12 x86_64 (sklearn)"
    host_base = "naive pip --target, this host (sklearn)"
    rows = [
        *size_rows("Lambda bundle (sklearn)", aws_sk, naive["lambda"], lam_base, target=True),
        *size_rows("Lambda bundle (ONNX export)", aws_onnx, naive["lambda"], lam_base,
                   target=True),
        *size_rows("Lambda bundle (sklearn) vs host install", aws_sk, naive["host"], host_base,
                   target=False),
        *size_rows("local bundle + env (sklearn)", local_sk, naive["host"], host_base,
                   target=False),
    ]  # fmt: skip
    return rows, {"breakdown": kinds}


def main(argv: list[str] | None = None) -> Path:
    argparse.ArgumentParser(description="bundle-size benchmark").parse_args(argv)
    rows, extra = measure()
    params = {"lambda_pip": LAMBDA_PIP, "python": sys.version.split()[0], **extra}
    return write("bundle_size", rows, params)


if __name__ == "__main__":
    print(main())
