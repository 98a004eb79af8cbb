"""Lambda init with and without shipped bytecode: the default python3.12 bundle of the
iris model, built twice (``aws.bytecode: auto`` with the CPython 3.12 this machine has,
found by ``slml.bundle.bytecode.find_interpreter``; and ``never``), each run by that
same interpreter as Lambda would: ``python3.12 -I -S -B`` with only the function and
the layer on sys.path (read-only in effect: ``-B`` writes no bytecode, and ``-I``
ignores PYTHONDONTWRITEBYTECODE and the rest of the environment), importing the handler
(which loads the model) and answering one HTTP API v2 event.

    python -m benchmarks.lambda_bytecode [--reps 5]

Runs alternate between the two bundles. Figures: spawn → answer (wall), and the init
alone (``import slml_handler``, timed inside the process). The host's glibc (2.36)
runs the manylinux_2_34 wheels built for Lambda, so this is the same code Lambda runs,
not under Lambda's runtime interface client.
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks.common import IRIS_ROW, ROOT, WORK, iris_project, row, write_result
from slml.bundle.bytecode import find_interpreter
from slml.bundle.lambda_bundle import LambdaOptions, build_lambda_bundle

EVENT = ROOT / "tests" / "fixtures" / "events" / "apigw-http-api-v2.json"
CODE = """\
import time
t0 = time.perf_counter()
import json, sys
sys.path[:0] = [{function!r}, {layer!r}]
import slml_handler
t1 = time.perf_counter()
response = slml_handler.handler(json.loads(sys.stdin.read()), None)
t2 = time.perf_counter()
assert response["statusCode"] == 200, response
print(json.dumps({{"init_ms": (t1 - t0) * 1000, "first_ms": (t2 - t1) * 1000}}))
"""


def event() -> str:
    data = json.loads(EVENT.read_text())
    data["rawPath"] = data["requestContext"]["http"]["path"] = "/predict"
    data["headers"] = {"content-type": "application/json"}
    data["rawQueryString"] = ""
    data["body"] = base64.b64encode(json.dumps({"instances": [IRIS_ROW]}).encode()).decode()
    return json.dumps(data)


def run_once(python: str, bundle: Any) -> dict[str, float]:
    function, layer = str(bundle.files["function"]), str(bundle.files["layer_dir"])
    env = {"SLML_MODEL_DIR": f"{function}/model", "PATH": ""}
    start = time.perf_counter()
    done = subprocess.run([python, "-I", "-S", "-B", "-c", CODE.format(function=function,
                          layer=layer)], input=event(), capture_output=True, text=True,
                          env=env, timeout=300, check=True)  # fmt: skip
    wall = (time.perf_counter() - start) * 1000
    return {"wall_ms": wall, **json.loads(done.stdout.strip().splitlines()[-1])}


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    interpreter = find_interpreter("3.12")
    if interpreter is None:
        raise SystemExit("no CPython 3.12 on this machine: nothing to measure with")
    project = iris_project("lambda-bytecode")
    artifact, cache = project / "artifacts" / "iris", WORK / "cache-bytecode"
    bundles = {
        mode: build_lambda_bundle(
            artifact, project / f"out-{mode}", cache_dir=cache, options=LambdaOptions(bytecode=mode)
        )
        for mode in ("auto", "never")
    }
    runs: dict[str, list[dict[str, float]]] = {"auto": [], "never": []}
    for mode in ("auto", "never"):  # warm the page cache once each
        run_once(interpreter.path, bundles[mode])
    for rep in range(args.reps):
        for mode in ("auto", "never") if rep % 2 == 0 else ("never", "auto"):
            runs[mode].append(run_once(interpreter.path, bundles[mode]))
    base = "the same bundle without bytecode (aws.bytecode: never)"
    rows = [
        row(f"Lambda bundle (python3.12): {label}", "ms", [r[key] for r in runs["auto"]],
            [r[key] for r in runs["never"]], baseline_name=base)
        for key, label in (("wall_ms", "spawn → first answer"), ("init_ms", "init (import "
                           "handler, load model)"), ("first_ms", "first event"))
    ]  # fmt: skip
    params = {**vars(args), "interpreter": interpreter.path, "version": interpreter.version,
              "found_in": interpreter.source, "raw": runs,
              "notes": {m: list(b.notes) for m, b in bundles.items()}}  # fmt: skip
    return write_result("lambda_bytecode", rows, params)


if __name__ == "__main__":
    print(main())
