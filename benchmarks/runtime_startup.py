"""Runtime cold-start figures: import time, load time, first prediction, serve-to-ready.

    .venv/bin/python benchmarks/runtime_startup.py ARTIFACT_DIR [--runs 5]

Each run is a fresh interpreter. Prints medians in milliseconds as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

IN_PROCESS = r"""
import time, json, asyncio, sys
t0 = time.perf_counter()
from slml.runtime.app import create_app
t1 = time.perf_counter()
app = create_app(sys.argv[1])
t2 = time.perf_counter()
body = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()
scope = {"type": "http", "method": "POST", "path": "/predict", "raw_path": b"/predict",
         "headers": [(b"content-type", b"application/json")], "query_string": b"",
         "http_version": "1.1", "scheme": "http", "server": ("x", 80), "client": ("y", 1),
         "root_path": ""}
sent = []
async def receive():
    return {"type": "http.request", "body": body, "more_body": False}
async def send(message):
    sent.append(message)
asyncio.run(app(scope, receive, send))
t3 = time.perf_counter()
assert sent[0]["status"] == 200, sent
print(json.dumps({"import_app_ms": (t1 - t0) * 1e3, "load_model_ms": (t2 - t1) * 1e3,
                  "first_predict_ms": (t3 - t2) * 1e3, "total_ms": (t3 - t0) * 1e3}))
"""


def in_process(artifact: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, artifact], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def serve_ready(artifact: str) -> dict[str, float]:
    import signal

    import httpx

    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "slml.runtime.serve", "--model", artifact, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    ready = json.loads(proc.stdout.readline())
    t1 = time.perf_counter()
    httpx.post(
        f"http://127.0.0.1:{ready['port']}/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]}
    ).raise_for_status()
    t2 = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)
    return {"spawn_to_ready_ms": (t1 - t0) * 1e3, "spawn_to_first_prediction_ms": (t2 - t0) * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("artifact")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    samples = [in_process(args.artifact) | serve_ready(args.artifact) for _ in range(args.runs)]
    print(
        json.dumps(
            {k: round(statistics.median(s[k] for s in samples), 1) for k in samples[0]}, indent=2
        )
    )


if __name__ == "__main__":
    main()
