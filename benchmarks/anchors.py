"""The peers the serving benchmark measures slml against, on the same iris model file:
``mlflow models serve``, ``bentoml serve`` and the hand-written app on
``uvicorn[standard]`` (httptools, uvloop), each installed by the benchmark into its
own virtualenv under ``benchmarks/.work/anchors/<name>`` with uv at pinned versions (and
the scikit-learn/NumPy/joblib of this environment, so the very same pickle loads).

    python -m benchmarks.anchors          # create or reuse both environments, print paths

Each ``start_*`` function returns a ``procs.Server`` (own process group, healthy, on
127.0.0.1) and the path and body its predict route expects.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from benchmarks.common import PYTHON, WORK, env_with
from benchmarks.procs import Server, free_port, start_server

ANCHORS = WORK / "anchors"
UV = PYTHON.with_name("uv")
PINS = {
    "mlflow": ("mlflow==3.17.2",),
    "bentoml": ("bentoml==1.4.40",),
    # the hand-written app (benchmarks/baseline_app.py) with uvicorn's C extras
    "uvicorn-standard": (
        f"uvicorn[standard]=={version('uvicorn')}",
        f"starlette=={version('starlette')}",
    ),
}
SHARED = tuple(f"{p}=={version(p)}" for p in ("scikit-learn", "numpy", "joblib", "scipy"))


@dataclass(frozen=True)
class Anchor:
    """A peer server ready to load: ``path`` and ``body`` are its predict request."""

    server: Server
    path: str
    body: str


def ensure_venv(name: str) -> Path:
    """The virtualenv of ``name`` with its pinned packages; created once, reused while
    its marker names the same pins. Returns the venv's bin directory."""
    venv = ANCHORS / name
    marker = venv / ".slml-bench-pins"
    wanted = "\n".join(PINS[name] + SHARED)
    if marker.is_file() and marker.read_text() == wanted:
        return venv / "bin"
    shutil.rmtree(venv, ignore_errors=True)
    base = Path(getattr(sys, "_base_executable", sys.executable))
    subprocess.run([str(UV), "venv", "--quiet", "--python", str(base), str(venv)], check=True)
    subprocess.run(
        [str(UV), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
         *PINS[name], *SHARED],
        check=True, timeout=1800,
    )  # fmt: skip
    marker.write_text(wanted)
    return venv / "bin"


def mlflow_model(model_file: Path, dest: Path) -> Path:
    """An MLflow model directory (``mlflow.sklearn.save_model``) of the same pickle."""
    if (dest / "MLmodel").is_file():
        return dest
    code = (
        "import joblib, mlflow.sklearn, sys\n"
        "mlflow.sklearn.save_model(joblib.load(sys.argv[1]), sys.argv[2])\n"
    )
    python = ensure_venv("mlflow") / "python"
    subprocess.run([str(python), "-c", code, str(model_file), str(dest)], check=True,
                   capture_output=True, timeout=300)  # fmt: skip
    return dest


def start_mlflow(model_file: Path, row: list[float], log: Path) -> Anchor:
    """``mlflow models serve`` with one worker, no conda/virtualenv of its own."""
    bin_dir = ensure_venv("mlflow")
    model = mlflow_model(model_file, ANCHORS / "mlflow-model")
    port = free_port()
    cmd = [str(bin_dir / "mlflow"), "models", "serve", "-m", str(model), "--env-manager",
           "local", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    env = env_with(PATH=f"{bin_dir}:{env_with()['PATH']}", MLFLOW_TRACKING_URI="file:///dev/null")
    server = start_server(cmd, url=f"http://127.0.0.1:{port}", health="/ping", log=log, env=env)
    return Anchor(server, "/invocations", json.dumps({"inputs": [row]}))


BENTO_SERVICE = '''\
"""The iris model as a BentoML service, as its documentation writes one."""
import os

import bentoml
import joblib
import numpy as np


@bentoml.service(workers=1)
class Iris:
    def __init__(self) -> None:
        self.model = joblib.load(os.environ["IRIS_MODEL"])

    @bentoml.api
    def predict(self, instances: list[list[float]]) -> list:
        return self.model.predict(np.asarray(instances, dtype=np.float64)).tolist()
'''


def start_bentoml(model_file: Path, row: list[float], log: Path) -> Anchor:
    """``bentoml serve`` of a one-class service (1 worker) loading the same pickle."""
    bin_dir = ensure_venv("bentoml")
    service_dir = ANCHORS / "bento-service"
    service_dir.mkdir(parents=True, exist_ok=True)
    (service_dir / "service.py").write_text(BENTO_SERVICE)
    port = free_port()
    cmd = [str(bin_dir / "bentoml"), "serve", "service:Iris", "--host", "127.0.0.1",
           "--port", str(port)]  # fmt: skip
    env = env_with(PATH=f"{bin_dir}:{env_with()['PATH']}", IRIS_MODEL=str(model_file),
                   BENTOML_HOME=str(ANCHORS / "bentoml-home"),
                   BENTOML_DO_NOT_TRACK="true")  # fmt: skip
    server = start_server(cmd, url=f"http://127.0.0.1:{port}", health="/readyz", log=log,
                          env=env, cwd=service_dir, timeout=180)  # fmt: skip
    return Anchor(server, "/predict", json.dumps({"instances": [row]}))


if __name__ == "__main__":
    for anchor in PINS:
        print(anchor, ensure_venv(anchor))


def start_standard(model_file: Path, row: list[float], log: Path) -> Anchor:
    """The hand-written app under ``uvicorn[standard]``: httptools and uvloop."""
    bin_dir = ensure_venv("uvicorn-standard")
    port = free_port()
    script = Path(__file__).with_name("baseline_app.py")
    cmd = [str(bin_dir / "python"), str(script), "--model", str(model_file), "--port",
           str(port), "--server", "standard"]  # fmt: skip
    server = start_server(cmd, url=f"http://127.0.0.1:{port}", log=log, env=env_with())
    return Anchor(server, "/predict", json.dumps({"instances": [row]}))
