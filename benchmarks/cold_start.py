"""Cold start: a fresh interpreter to the first prediction, slml against the floor.

Variants, each started as a new process, round-robin so machine noise hits all alike:

- ``floor_script``: a bare script that imports joblib/numpy (sklearn comes with the
  unpickled model), loads the same model file and predicts once. The absolute floor.
- ``starlette_floor``: a minimal hand-written Starlette + uvicorn app process
  (benchmarks/baseline_app.py) serving the same file: spawn → first 200 on /predict.
- ``slml_serve``: ``python -m slml.runtime.serve --model DIR``: spawn → first 200.
- ``lambda_handler``: ``import slml.runtime.lambda_handler`` + ``handler(v2 event)``
  (API Gateway HTTP API event as sam emits it): spawn → printed 200 response.
- The ONNX export of the same model (opt-in): its own floor script (which imports json,
  as the Lambda script must to parse its event), slml serve, handler.

Scripts are timed to the line they print with the prediction (not to exit); servers
to the first 200 of a POST /predict polled every 5 ms. Every process uses this
interpreter, so the ratio isolates slml's own overhead. Python's bytecode cache is on
for every process (``bytecode_env``): a machine that sets PYTHONDONTWRITEBYTECODE would
otherwise recompile every imported module on every spawn, which is not how an installed
package starts, and which costs slml's larger import set more than the floor's.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import (
    IRIS_ROW,
    PYTHON,
    ROOT,
    env_with,
    iris_project,
    row,
    write_result,
)
from benchmarks.procs import free_port, post_json, stop_group

BODY = json.dumps({"instances": [IRIS_ROW]})
SAM_EVENT = ROOT / "tests" / "fixtures" / "events" / "apigw-http-api-v2.json"

FLOOR_SKLEARN = """
import sys, joblib, numpy as np
model = joblib.load(sys.argv[1])
print(model.predict(np.asarray([ROW], dtype=np.float64)).tolist(), flush=True)
""".replace("ROW", repr(IRIS_ROW))

# json too: the Lambda script below needs it to hand the handler its event, as Lambda's
# runtime does before any init (the sklearn floor has it through joblib)
FLOOR_ONNX = """
import json, sys, numpy as np, onnxruntime as ort
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
x = np.asarray([ROW], dtype=np.float32)
print(s.run(None, {s.get_inputs()[0].name: x})[0].tolist(), flush=True)
""".replace("ROW", repr(IRIS_ROW))

LAMBDA = """
import json, sys
from slml.runtime.lambda_handler import handler
out = handler(json.loads(sys.argv[1]), None)
print(out["statusCode"], out["body"], flush=True)
"""


def bytecode_env(**extra: str) -> dict[str, str]:
    """The environment for every timed process: bytecode cached, as installed packages
    have it (the untimed warm-up run writes what is missing)."""
    env = env_with(**extra)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def v2_event() -> str:
    """The sam-generated HTTP API (payload 2.0) event, pointed at POST /predict."""
    event = copy.deepcopy(json.loads(SAM_EVENT.read_text()))
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/predict"
    event["requestContext"]["http"]["method"] = "POST"
    event["rawQueryString"] = ""
    event["headers"] = {"content-type": "application/json", "host": "x.execute-api.amazonaws.com"}
    event["body"], event["isBase64Encoded"] = BODY, False
    return json.dumps(event)


def time_script(args: list[str], *, expect: str, env: dict[str, str] | None = None) -> float:
    """Seconds from spawn to the first stdout line that contains ``expect`` (the Lambda
    handler prints its CloudWatch metrics line, ``{"_aws": ...}``, before the answer)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env or bytecode_env())  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        while line.startswith('{"_aws"'):
            line = proc.stdout.readline()
        elapsed = time.perf_counter() - start
    finally:
        _out, err = proc.communicate(timeout=120)
    if expect not in line:
        raise RuntimeError(f"{args[:3]}: expected {expect!r}, got {line!r}\n{err[-2000:]}")
    return elapsed


def time_server(args: list[str], port: int, *, timeout: float = 120) -> float:
    """Seconds from spawn to the first 200 on POST /predict; the server is stopped."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=bytecode_env(), start_new_session=True)  # fmt: skip
    try:
        while time.perf_counter() - start < timeout:
            status, _ = post_json(f"http://127.0.0.1:{port}/predict", BODY.encode(), timeout=5)
            if status == 200:
                return time.perf_counter() - start
            if proc.poll() is not None:
                raise RuntimeError(f"{args[:4]} exited: {proc.stderr.read()[-2000:]!r}")  # type: ignore[union-attr]
            time.sleep(0.005)
        raise RuntimeError(f"{args[:4]}: no 200 within {timeout} s")
    finally:
        stop_group(proc)  # type: ignore[arg-type]


def variants(sk: Path, onnx: Path) -> dict[str, Callable[[], float]]:
    event = v2_event()
    py = str(PYTHON)
    baseline = str(ROOT / "benchmarks" / "baseline_app.py")

    def server(*args: str) -> Callable[[], float]:
        def run() -> float:
            port = free_port()
            return time_server([py, *args, "--port", str(port)], port)

        return run

    def lam(model: Path) -> Callable[[], float]:
        env = bytecode_env(SLML_MODEL_DIR=str(model))
        env["SLML_MODEL_DIR"] = str(model)
        return lambda: time_script([py, "-c", LAMBDA, event], expect="200", env=env)

    return {
        "floor_script": lambda: time_script(
            [py, "-c", FLOOR_SKLEARN, str(sk / "model" / "model.joblib")], expect="["
        ),
        "starlette_floor": server(baseline, "--model", str(sk / "model" / "model.joblib")),
        "slml_serve": server("-m", "slml.runtime.serve", "--model", str(sk)),
        "lambda_handler": lam(sk),
        "floor_script_onnx": lambda: time_script(
            [py, "-c", FLOOR_ONNX, str(onnx / "model" / "model.onnx")], expect="["
        ),
        "slml_serve_onnx": server("-m", "slml.runtime.serve", "--model", str(onnx)),
        "lambda_handler_onnx": lam(onnx),
    }


def measure(runs: int, warmup: int = 1) -> dict[str, list[float]]:
    sk = iris_project("cold-start") / "artifacts" / "iris"
    onnx = iris_project("cold-start-onnx", onnx=True) / "artifacts" / "iris"
    todo = variants(sk, onnx)
    samples: dict[str, list[float]] = {name: [] for name in todo}
    for i in range(warmup + runs):
        for name, fn in todo.items():
            value = fn()
            if i >= warmup:
                samples[name].append(value * 1000)
    return samples


def rows(s: dict[str, list[float]]) -> list[dict[str, Any]]:
    t = "≤ 1.2x"
    return [
        row("server: spawn → first 200 (sklearn)", "ms", s["slml_serve"], s["starlette_floor"],
            baseline_name="hand-written Starlette+uvicorn app", target=t, limit=1.2),
        row("server: spawn → first 200 (sklearn) vs bare script", "ms", s["slml_serve"],
            s["floor_script"], baseline_name="bare script: load + predict"),
        row("Lambda handler: spawn → first answer (sklearn)", "ms", s["lambda_handler"],
            s["floor_script"], baseline_name="bare script: load + predict", target=t,
            limit=1.2),
        row("Lambda handler (ONNX export) vs sklearn floor", "ms", s["lambda_handler_onnx"],
            s["floor_script"], baseline_name="bare script: load + predict (sklearn)"),
        row("Lambda handler (ONNX export) vs ONNX floor", "ms", s["lambda_handler_onnx"],
            s["floor_script_onnx"], baseline_name="bare script: onnxruntime load + run",
            target=t, limit=1.2),
        row("server (ONNX export) vs sklearn Starlette floor", "ms", s["slml_serve_onnx"],
            s["starlette_floor"], baseline_name="hand-written Starlette+uvicorn app (sklearn)"),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description="cold-start benchmark")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    samples = measure(args.runs)
    return write_result(
        "cold_start", rows(samples), {"runs": args.runs, "warmup": 1, "raw_ms": samples}
    )


if __name__ == "__main__":
    print(main())
