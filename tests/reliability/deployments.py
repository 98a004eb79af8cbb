"""Helpers for reliability tests that drive the real ``slml`` CLI as subprocesses on a
temporary project (local provider), and inspect ``.slml/`` and /proc afterwards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.procs import kill_group, post_json, processes_with

SLML = Path(sys.executable).with_name("slml")
ROW_BODY = b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
CONFIG = """\
name: reliability
model: artifacts/iris
provider: local
stage: dev
local:
  host: 127.0.0.1
  health_timeout: 90
"""


@dataclass
class Project:
    """A temporary slml project and the environment its commands run with."""

    root: Path
    env: dict[str, str]

    @property
    def model(self) -> Path:
        return self.root / "artifacts" / "iris"

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(SLML), *args], cwd=self.root, env=self.env, text=True,
                              capture_output=True, timeout=timeout)  # fmt: skip

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """``slml ARGS`` as a user starts it at a terminal: its own session, and SIGINT at
        its default so Ctrl-C (a test's SIGINT) raises KeyboardInterrupt in it."""
        return subprocess.Popen([str(SLML), *args], cwd=self.root, env=self.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True, preexec_fn=default_sigint)  # fmt: skip

    def deploy(self) -> dict[str, Any]:
        done = self.cli("deploy", "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def status(self) -> dict[str, Any]:
        done = self.cli("status", "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def record(self) -> dict[str, Any] | None:
        path = self.root / ".slml" / "deployments" / "dev" / "local.json"
        return json.loads(path.read_text()) if path.exists() else None

    def history(self) -> list[dict[str, Any]]:
        path = self.root / ".slml" / "history.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def servers(self) -> list[int]:
        """Live server processes of this project (their command line names it)."""
        return [p for p in processes_with(str(self.root)) if _is_server(p)]

    def cleanup(self) -> None:
        """destroy, then SIGKILL whatever server of this project is still alive."""
        try:
            self.cli("destroy", timeout=120)
        finally:
            for pid in self.servers():
                kill_group(pid)


def default_sigint() -> None:
    """In the child before exec: SIGINT back to its default. A suite started from a
    background job (``cmd &`` in a script, as CI may start it) inherits SIGINT ignored,
    every child with it, and Python keeps an ignored SIGINT ignored: the interrupt tests
    then saw a deploy run to its end (CI failed them so, twice)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _is_server(pid: int) -> bool:
    try:
        return b"slml.runtime.serve" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def make_project(root: Path, artifact: Path, cache: Path) -> Project:
    root.mkdir(parents=True)
    (root / "slml.yaml").write_text(CONFIG)
    shutil.copytree(artifact, root / "artifacts" / "iris")
    env = {**os.environ, "SLML_CACHE_DIR": str(cache)}
    env.pop("SLML_MODEL_DIR", None)
    return Project(root=root, env=env)


def predict(url: str) -> tuple[int | None, dict[str, Any]]:
    status, body = post_json(url.rstrip("/") + "/predict", ROW_BODY)
    return status, (json.loads(body) if body else {})


def wait_for(condition, *, timeout: float, interval: float = 0.1) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())
