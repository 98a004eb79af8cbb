"""The Docker engine the container tests drive, through the ``docker`` CLI.

Network rule, for every build and container without exception: ``--network host`` (the
daemon runs with no bridge, see tools/engine.sh) and traffic only to 127.0.0.1. The
methods here add ``--network host`` themselves, so a test cannot forget it. Nothing is
ever pulled (``--pull never``): base images are built here (images/build.py).

``find_engine()`` returns an Engine, or the one-line reason there is none; the
``engine`` fixture skips on that reason, except under ``CI=true`` where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

NETWORK = ("--network", "host")


class EngineError(RuntimeError):
    """A docker command failed; the message holds its command line and output tail."""


@dataclass(frozen=True)
class Engine:
    docker: str

    def run(
        self, args: Sequence[str], *, input: bytes | None = None, timeout: float = 1800,
        check: bool = True,
    ) -> subprocess.CompletedProcess[bytes]:  # fmt: skip
        """Run ``docker ARGS``; raise EngineError with the output tail when it fails."""
        done = subprocess.run(
            [self.docker, *args], input=input, capture_output=True, timeout=timeout,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
        )  # fmt: skip
        if check and done.returncode != 0:
            tail = (done.stdout + done.stderr).decode(errors="replace")[-3000:]
            raise EngineError(f"docker {' '.join(args[:6])} ... failed:\n{tail}")
        return done

    def build(
        self, context: Path, tag: str, *, build_args: dict[str, str] | None = None,
        platform: str | None = None, timeout: float = 1800,
    ) -> str:  # fmt: skip
        """``docker build --network host`` of ``context``; returns the output."""
        args = ["build", *NETWORK, "--tag", tag, "--force-rm"]
        for key, value in (build_args or {}).items():
            args += ["--build-arg", f"{key}={value}"]
        if platform:
            args += ["--platform", platform]
        done = self.run([*args, str(context)], timeout=timeout)
        return done.stdout.decode(errors="replace")

    def run_args(self, *, name: str, image: str, options: Sequence[str] = (),
                 command: Sequence[str] = ()) -> list[str]:  # fmt: skip
        """The full ``docker run`` command line (detached, host network)."""
        return [self.docker, "run", "--detach", "--pull", "never", *NETWORK, "--name", name,
                *options, image, *command]  # fmt: skip

    def start(self, *, name: str, image: str, options: Sequence[str] = (),
              command: Sequence[str] = ()) -> str:  # fmt: skip
        """Start a detached container; returns its name (remove it with ``remove``)."""
        self.remove(name)
        args = self.run_args(name=name, image=image, options=options, command=command)
        self.run(args[1:])
        return name

    def remove(self, name: str) -> None:
        self.run(["rm", "--force", "--volumes", name], check=False)

    def logs(self, name: str) -> str:
        done = self.run(["logs", name], check=False)
        return (done.stdout + done.stderr).decode(errors="replace")

    def inspect(self, name: str) -> dict | None:
        done = self.run(["inspect", name], check=False)
        if done.returncode != 0:
            return None
        return json.loads(done.stdout)[0]

    def image_label(self, tag: str, label: str) -> str | None:
        """The value of ``label`` on image ``tag``, or None when there is no such image."""
        info = self.inspect_image(tag)
        if info is None:
            return None
        return ((info.get("Config") or {}).get("Labels") or {}).get(label)

    def inspect_image(self, tag: str) -> dict | None:
        done = self.run(["image", "inspect", tag], check=False)
        return json.loads(done.stdout)[0] if done.returncode == 0 else None

    def layer_sizes(self, tag: str) -> list[tuple[str, int]]:
        """``(created by, bytes)`` of each layer of ``tag``, newest first."""
        done = self.run(["history", "--no-trunc", "--human=false", "--format",
                         "{{.Size}}\t{{.CreatedBy}}", tag])  # fmt: skip
        rows = [line.split("\t", 1) for line in done.stdout.decode().splitlines() if line]
        return [(by, int(size)) for size, by in rows]

    def image_ids(self) -> set[str]:
        """The IDs of every image the engine holds (dangling ones included)."""
        done = self.run(["images", "--all", "--quiet", "--no-trunc"], check=False)
        return set(done.stdout.decode().split())

    def remove_images(self, ids: set[str]) -> None:
        """Remove these images (and their tags); what is still in use is left."""
        if ids:
            self.run(["image", "rm", "--force", *sorted(ids)], check=False)

    def image_size(self, tag: str) -> int:
        info = self.inspect_image(tag)
        return int(info["Size"]) if info else 0


def find_engine() -> tuple[Engine | None, str]:
    """An Engine that answers, or None and why not (one line)."""
    docker = shutil.which("docker")
    if docker is None:
        return None, "no docker CLI on PATH (run `make engine` as root to install one)"
    try:
        done = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        return None, "the Docker engine did not answer within 20 s"
    if done.returncode != 0:
        return None, "no Docker engine answers (start one with `make engine`, as root)"
    return Engine(docker), f"Docker engine {done.stdout.decode().strip()}"


def arm64_emulation() -> bool:
    """Whether binfmt runs aarch64 binaries here (qemu-user-static, enabled)."""
    entry = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
    try:
        return entry.read_text().startswith("enabled")
    except OSError:
        return False
