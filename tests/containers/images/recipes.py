"""The stand-in base images, as data: what each is built from, tagged with the exact
name slml's generated Dockerfiles use (no registry is reachable, nothing is pulled).

Root file systems come from ``debootstrap --variant=minbase`` (Debian's mirror, through
apt's usual route); CPython is a pyenv build from this machine (3.11, 3.12, 3.13 on
x86_64) or Debian trixie's own (3.13 on arm64, under qemu). The Lambda images lay the
runtime out as AWS's ``public.ecr.aws/lambda/python`` images do: Python under
``/var/lang``, the Runtime Interface Client (awslambdaric, pinned in constraints.txt)
in ``/var/runtime``, ``/lambda-entrypoint.sh HANDLER``, ``WORKDIR /var/task``, and no
extra shared libraries (no libgomp: Lambda's images have none either).

Every recipe's fields, the files it adds and the versions of what it copies make its
cache key (build.py): change any and the image is rebuilt, else it is reused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MIRROR = "http://deb.debian.org/debian"
# Shared libraries the pyenv builds' extension modules link (ldd lib-dynload/*.so).
PYENV_LIBS = (
    "libssl3", "libffi8", "libsqlite3-0", "libexpat1", "libncursesw6", "libreadline8",
    "libtirpc3", "libbz2-1.0", "libuuid1", "libgdbm6",
)  # fmt: skip
# What AWS's Lambda base images set (docs.aws.amazon.com/lambda/latest/dg/configuration-
# envvars.html#configuration-envvars-runtime; `docker inspect` of public.ecr.aws/lambda/python).
LAMBDA_ENV = {
    "LANG": "en_US.UTF-8",
    "TZ": ":/etc/localtime",
    "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:"
    "/var/task:/var/task/lib:/opt/lib",
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
    "PYTHONPATH": "/var/runtime",
}
LAMBDA_ENTRYPOINT = """#!/bin/sh
# Stand-in for the AWS base image's entrypoint: the Runtime Interface Client on HANDLER,
# talking to $AWS_LAMBDA_RUNTIME_API.
if [ $# -ne 1 ]; then
  echo "entrypoint requires the handler name to be the first argument" 1>&2
  exit 142
fi
export _HANDLER="$1"
exec /var/lang/bin/python3 -m awslambdaric "$_HANDLER"
"""


@dataclass(frozen=True)
class Rootfs:
    suite: str
    arch: str  # Debian's name: amd64, arm64
    include: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.suite}-{self.arch}"

    @property
    def platform(self) -> str:
        return {"amd64": "linux/amd64", "arm64": "linux/arm64"}[self.arch]


@dataclass(frozen=True)
class BaseImage:
    tag: str
    rootfs: Rootfs
    python: str  # "pyenv:<version>" (copied into prefix) or "debian:<minor>" (linked)
    prefix: str  # /usr/local (Docker's python images) or /var/lang (Lambda's)
    env: dict[str, str] = field(default_factory=dict)
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    workdir: str = "/"
    lambda_ric: bool = False  # awslambdaric in /var/runtime + /lambda-entrypoint.sh

    @property
    def minor(self) -> str:
        version = self.python.split(":", 1)[1]
        return ".".join(version.split(".")[:2])

    @property
    def uv_platform(self) -> str:
        return {"amd64": "x86_64", "arm64": "aarch64"}[self.rootfs.arch] + "-manylinux_2_34"


BOOKWORM = Rootfs("bookworm", "amd64", PYENV_LIBS)
TRIXIE_ARM64 = Rootfs("trixie", "arm64", ("python3",))


def _lambda(tag: str, rootfs: Rootfs, python: str) -> BaseImage:
    return BaseImage(
        tag=tag, rootfs=rootfs, python=python, prefix="/var/lang", env=LAMBDA_ENV,
        entrypoint=("/lambda-entrypoint.sh",), workdir="/var/task", lambda_ric=True,
    )  # fmt: skip


# Docker's official image (Cloud Run and SageMaker Dockerfiles): CPython under /usr/local.
PYTHON_311 = BaseImage(
    tag="python:3.11.15-slim-bookworm", rootfs=BOOKWORM, python="pyenv:3.11.7",
    prefix="/usr/local",
    env={"PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
         "LANG": "C.UTF-8"},
    cmd=("python3",),
)  # fmt: skip
LAMBDA_312 = _lambda("public.ecr.aws/lambda/python:3.12", BOOKWORM, "pyenv:3.12.1")
LAMBDA_313 = _lambda("public.ecr.aws/lambda/python:3.13", BOOKWORM, "pyenv:3.13.0")
# AWS publishes per-architecture tags beside the multi-arch one (3.13-arm64).
LAMBDA_313_ARM64 = _lambda("public.ecr.aws/lambda/python:3.13-arm64", TRIXIE_ARM64,
                           "debian:3.13")  # fmt: skip
LAMBDA_IMAGES = {
    ("python3.12", "x86_64"): LAMBDA_312,
    ("python3.13", "x86_64"): LAMBDA_313,
    ("python3.13", "arm64"): LAMBDA_313_ARM64,
}
