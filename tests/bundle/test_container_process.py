"""The container's entrypoint run as a process from the build context, without Docker:
a fresh virtualenv gets requirements.lock, then the Dockerfile's own ENV and ENTRYPOINT
run with cwd=context. Cloud Run's contract ($PORT, /predict) and SageMaker's (`serve`,
8080, /ping, /invocations, the model from an unpacked model.tar.gz) are checked over
real HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from slml.bundle.container import build_container_context
from slml.bundle.uvtool import run_uv

pytestmark = pytest.mark.slow
# Where the Dockerfile's COPY lines put the context's directories in the image.
IMAGE_PATHS = {"/app": "app", "/app/model": "model"}
HOST_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def dockerfile_env(dockerfile: Path) -> dict[str, str]:
    """The ENV instructions' values (``KEY=value`` pairs, continuation lines joined)."""
    text = dockerfile.read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def dockerfile_entrypoint(dockerfile: Path) -> list[str]:
    match = re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile.read_text(), re.M)
    assert match, "the Dockerfile has no exec-form ENTRYPOINT"
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def built(tmp_path_factory, _iris_artifact_master) -> tuple[Path, Path, Path]:
    """(context, venv python, unpacked model.tar.gz playing /opt/ml/model)."""
    root = tmp_path_factory.mktemp("proc")
    bundle = build_container_context(
        _iris_artifact_master, root / "context", provider="sagemaker",
        python_version=HOST_PYTHON, cache_dir=root / "cache", model_tar=root / "model.tar.gz",
        measure=False,
    )  # fmt: skip
    venv = root / "venv"
    run_uv(["venv", "--quiet", "--python", sys.executable, str(venv)])
    python = venv / "bin" / "python"
    lock = bundle.path / "requirements.lock"
    run_uv(["pip", "install", "--quiet", "--compile-bytecode", "--python", str(python),
            "--only-binary", ":all:",
            "--no-deps", "-r", str(lock)])  # fmt: skip
    opt_ml_model = root / "opt" / "ml" / "model"
    opt_ml_model.mkdir(parents=True)
    with tarfile.open(bundle.files["model_tar"]) as tar:
        tar.extractall(opt_ml_model, filter="data")
    return bundle.path, python, opt_ml_model


@contextlib.contextmanager
def entrypoint(context: Path, python: Path, *args: str, env: dict[str, str]) -> Iterator[dict]:
    """Run the Dockerfile's ENTRYPOINT (its ``python`` = the fresh venv's) with the
    Dockerfile's ENV, PYTHONPATH=app and ``env`` on top; yield the ready line."""
    dockerfile = context / "Dockerfile"
    command = dockerfile_entrypoint(dockerfile)
    assert command[0] == "python"
    image_env = {k: IMAGE_PATHS.get(v, v) for k, v in dockerfile_env(dockerfile).items()}
    assert image_env["PYTHONPATH"] == "app" and image_env["SLML_MODEL_DIR"] == "model"
    full_env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    full_env |= {**image_env, "SLML_HOST": "127.0.0.1"} | env
    proc = subprocess.Popen(
        [str(python), *command[1:], *args], cwd=context, env=full_env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"the entrypoint exited {proc.wait()}: {proc.stderr.read()}")
        yield json.loads(line)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_venv_is_fresh_and_isolated(built) -> None:
    _, python, _ = built
    done = subprocess.run(
        [str(python), "-c", "import slml"], capture_output=True, text=True, cwd="/"
    )
    assert done.returncode != 0, "slml must come from the context's app/, not the venv"


def test_cloud_run_contract_listens_on_port_and_predicts(built, iris_rows) -> None:
    context, python, _ = built
    port = free_port()
    with entrypoint(context, python, env={"PORT": str(port)}) as ready:
        assert ready["port"] == port
        url = f"http://127.0.0.1:{port}"
        answer = httpx.post(f"{url}/predict", json={"instances": iris_rows}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == [0, 2, 1]
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200


def sagemaker_checks(port: int, rows: list[list[float]]) -> None:
    url = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{url}/ping", timeout=10).status_code == 200
    answer = httpx.post(
        f"{url}/invocations", json={"instances": rows}, timeout=30,
        headers={"content-type": "application/json"},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == [0, 2, 1]


def test_sagemaker_contract_serve_on_8080(built, iris_rows) -> None:
    """`<image> serve` with PORT unset listens on 8080, as SageMaker requires."""
    context, python, opt_ml_model = built
    if not port_is_free(8080):
        pytest.skip("port 8080 is taken on this machine; the --port override test covers the rest")
    env = {"SLML_MODEL_DIR": str(opt_ml_model)}
    with entrypoint(context, python, "serve", env=env) as ready:
        assert ready["port"] == 8080
        sagemaker_checks(8080, iris_rows)


def test_sagemaker_contract_with_port_override(built, iris_rows) -> None:
    context, python, opt_ml_model = built
    port = free_port()
    env = {"SLML_MODEL_DIR": str(opt_ml_model)}
    with entrypoint(context, python, "serve", "--port", str(port), env=env) as ready:
        assert ready["port"] == port and ready["model"] == "iris"
        sagemaker_checks(port, iris_rows)
