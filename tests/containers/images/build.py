"""Build (or reuse) the stand-in base images in recipes.py.

``ensure(engine, image)`` returns the tag once the engine holds an image whose
``org.slml.recipe`` label equals the recipe's key; otherwise it builds it, without
Docker layers: the root file system is assembled here and ``docker import``-ed once.

- debootstrap (``--variant=minbase``) runs once per root file system and recipe; the
  tree is kept under the cache directory (``$SLML_TEST_IMAGE_CACHE``, else
  ``~/.cache/slml-test-images``), so a changed image recipe does not debootstrap again;
- the machine's pip settings travel into every image the same way: ``/etc/pip.conf``
  (certificate, timeout, no version check) and this machine's CA bundle; the index is
  reached through ``HTTPS_PROXY``, a proxy on 127.0.0.1 (proxy.py), at build time only;
- ``docker import --platform`` is passed, but Docker 20.10 records the daemon's own
  architecture anyway: an arm64 image is labelled amd64 and runs through binfmt's
  qemu-aarch64 all the same, so run it without ``--platform``;
- awslambdaric is installed by uv for the image's platform and Python, pinned by
  constraints.txt.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict
from pathlib import Path

from filelock import FileLock

from containers.engine import Engine
from containers.images.recipes import LAMBDA_ENTRYPOINT, MIRROR, BaseImage, Rootfs
from slml.bundle.uvtool import run_uv

ROOTFS_VERSION = "1"
RECIPE_VERSION = "3"
LABEL = "org.slml.recipe"
ROOT = Path(__file__).resolve().parents[3]
CA_BUNDLE = Path(os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt")
PYENV = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
PIP_CONF = f"""[global]
cert = /etc/ssl/certs/ca-certificates.crt
default-timeout = {os.environ.get("PIP_DEFAULT_TIMEOUT", "180")}
disable-pip-version-check = 1
"""
PRUNE = ("test", "tests", "idlelib", "tkinter", "turtledemo", "lib2to3", "ensurepip", "*.a")
# What a fresh CPython install has in site-packages and bin/ (this machine's pyenv
# builds carry whatever was installed into them since: none of that is copied).
KEEP_SITE = ("pip", "pip-*", "setuptools", "setuptools-*", "_distutils_hack", "pkg_resources",
             "distutils-precedence.pth", "wheel", "wheel-*", "README.txt")  # fmt: skip
KEEP_BIN = ("python*", "pip*", "pydoc*")


class ImageBuildError(RuntimeError):
    pass


def cache_root() -> Path:
    path = Path(os.environ.get("SLML_TEST_IMAGE_CACHE") or Path.home() / ".cache/slml-test-images")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _pin(name: str) -> str:
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(f"{name}=="):
            return line.strip()
    raise ImageBuildError(f"{name} is not pinned in constraints.txt")


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def rootfs_key(rootfs: Rootfs) -> str:
    return _digest(ROOTFS_VERSION, asdict(rootfs), MIRROR)[:16]


def image_key(image: BaseImage) -> str:
    ca = hashlib.sha256(CA_BUNDLE.read_bytes()).hexdigest() if CA_BUNDLE.is_file() else None
    ric = (_pin("awslambdaric"), LAMBDA_ENTRYPOINT) if image.lambda_ric else None
    return _digest(RECIPE_VERSION, asdict(image), rootfs_key(image.rootfs), PIP_CONF, ca, ric,
                   PRUNE, KEEP_SITE, KEEP_BIN)[:24]  # fmt: skip


def _sh(args: list[str], *, what: str, timeout: float = 3600) -> None:
    done = subprocess.run(args, capture_output=True, timeout=timeout)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).decode(errors="replace")[-2000:]
        raise ImageBuildError(f"{what} failed ({' '.join(args[:4])} ...):\n{tail}")


def rootfs_dir(rootfs: Rootfs) -> Path:
    """The debootstrapped tree for ``rootfs``, built once per recipe and kept."""
    home = cache_root() / "rootfs" / f"{rootfs.name}-{rootfs_key(rootfs)}"
    home.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(home) + ".lock"):
        if (home / ".slml-complete").is_file():
            return home
        work = Path(tempfile.mkdtemp(prefix=f".{rootfs.name}-", dir=home.parent))
        work.chmod(0o755)
        try:
            args = ["debootstrap", "--variant=minbase", f"--arch={rootfs.arch}"]
            if rootfs.include:
                args.append("--include=" + ",".join(rootfs.include))
            _sh([*args, rootfs.suite, str(work), MIRROR], what=f"debootstrap {rootfs.name}")
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc",
                         "usr/share/man", "usr/share/info", "var/log"):  # fmt: skip
                target = work / junk
                if target.is_dir() and not target.is_symlink():
                    for child in target.iterdir():
                        if child.is_dir() and not child.is_symlink():
                            shutil.rmtree(child)
                        else:
                            child.unlink()
            (work / ".slml-complete").write_text(rootfs_key(rootfs))
            if home.exists():
                shutil.rmtree(home)
            work.rename(home)
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
    return home


def _fresh_install(source: Path):
    """A copytree ``ignore`` that leaves out PRUNE and all but a fresh install's files."""
    site = {source / "lib" / d.name / "site-packages" for d in (source / "lib").glob("python3*")}
    prune = shutil.ignore_patterns(*PRUNE)

    def ignore(directory: str, names: list[str]) -> set[str]:
        here = Path(directory)
        keep = KEEP_SITE if here in site else KEEP_BIN if here == source / "bin" else None
        if keep is None:
            return set(prune(directory, names))
        return {n for n in names if not any(fnmatch.fnmatch(n, k) for k in keep)}

    return ignore


def _fix_shebangs(bin_dir: Path, old_prefix: str, new_prefix: str) -> None:
    """pip's scripts name the interpreter by its pyenv path: point them at the copy."""
    for script in bin_dir.iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        data = script.read_bytes()
        if data.startswith(f"#!{old_prefix}/".encode()):
            script.write_bytes(data.replace(old_prefix.encode(), new_prefix.encode(), 1))


def _add_python(image: BaseImage, stage: Path) -> None:
    prefix = stage / image.prefix.lstrip("/")
    kind, version = image.python.split(":", 1)
    if kind == "pyenv":
        source = PYENV / version
        if not (source / "bin" / f"python{image.minor}").is_file():
            raise ImageBuildError(f"no pyenv build of CPython {version} at {source}")
        shutil.copytree(source, prefix, symlinks=True, dirs_exist_ok=True,
                        ignore=_fresh_install(source))  # fmt: skip
        _fix_shebangs(prefix / "bin", str(source), image.prefix)
        conf = stage / "etc/ld.so.conf.d/slml-python.conf"
        conf.write_text(f"{image.prefix}/lib\n")
        _sh(["ldconfig", "-r", str(stage)], what="ldconfig")
    else:  # Debian's own interpreter, linked where the image expects it
        (prefix / "bin").mkdir(parents=True, exist_ok=True)
        for name in ("python3", f"python{image.minor}", "python"):
            link = prefix / "bin" / name
            if not link.exists():
                link.symlink_to(f"/usr/bin/python{image.minor}")
    for name in ("python3", "python"):
        link = prefix / "bin" / name
        if not link.exists() and not link.is_symlink():
            link.symlink_to(f"python{image.minor}")


def _add_lambda_runtime(image: BaseImage, stage: Path) -> None:
    runtime = stage / "var/runtime"
    run_uv([
        "pip", "install", "--quiet", "--target", str(runtime), "--python-platform",
        image.uv_platform, "--python-version", image.minor, "--only-binary", ":all:",
        "--constraint", str(ROOT / "constraints.txt"), _pin("awslambdaric"),
    ])  # fmt: skip
    for name in ("var/task", "opt", "tmp"):
        (stage / name).mkdir(parents=True, exist_ok=True)
    entry = stage / "lambda-entrypoint.sh"
    entry.write_text(LAMBDA_ENTRYPOINT)
    entry.chmod(0o755)


def _stage(image: BaseImage, stage: Path) -> None:
    _sh(["cp", "-a", f"{rootfs_dir(image.rootfs)}/.", str(stage)], what="copy rootfs")
    (stage / ".slml-complete").unlink(missing_ok=True)
    stage.chmod(0o755)  # the image's / (cp -a copied the cached tree's mode)
    _add_python(image, stage)
    if image.lambda_ric:
        _add_lambda_runtime(image, stage)
    (stage / "etc/pip.conf").write_text(PIP_CONF)
    if CA_BUNDLE.is_file():
        (stage / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CA_BUNDLE, stage / "etc/ssl/certs/ca-certificates.crt")


def _changes(image: BaseImage, key: str) -> list[str]:
    changes = [f"LABEL {LABEL}={key}", "LABEL org.slml.stand-in=built-by-tests/containers",
               f"WORKDIR {image.workdir}"]  # fmt: skip
    changes += [f"ENV {k}={v}" for k, v in image.env.items()]
    if image.entrypoint:
        changes.append(f"ENTRYPOINT {json.dumps(list(image.entrypoint))}")
    if image.cmd:
        changes.append(f"CMD {json.dumps(list(image.cmd))}")
    return [arg for change in changes for arg in ("--change", change)]


def ensure(engine: Engine, image: BaseImage) -> str:
    """The image's tag, built here unless the engine already holds this recipe."""
    key = image_key(image)
    with FileLock(str(cache_root() / f"{key}.lock")):
        if engine.image_label(image.tag, LABEL) == key:
            return image.tag
        stage = Path(tempfile.mkdtemp(prefix="stage-", dir=cache_root()))
        try:
            _stage(image, stage)
            tar = subprocess.Popen(["tar", "-C", str(stage), "--numeric-owner", "-cf", "-", "."],
                                   stdout=subprocess.PIPE)  # fmt: skip
            done = subprocess.run(
                [engine.docker, "import", "--platform", image.rootfs.platform,
                 *_changes(image, key), "-", image.tag],
                stdin=tar.stdout, capture_output=True, timeout=1800,
            )  # fmt: skip
            tar.wait()
            if done.returncode != 0 or tar.returncode != 0:
                raise ImageBuildError(f"docker import {image.tag} failed: {done.stderr[-2000:]}")
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    return image.tag
