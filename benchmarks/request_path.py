"""CPU cost of the runtime's request path per request, in process, no sockets: the ASGI
app called directly (a fake receive/send), every validation and log line on (logs to
/dev/null). CPU time (``time.process_time``) rather than wall time, so a loaded shared
machine distorts it less than a load test.

    python -m benchmarks.request_path --model ARTIFACT_DIR [--requests N]

Run it under PYTHONPATH=<checkout> to measure another revision's slml.runtime.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

BODY = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()
SCOPE = {"type": "http", "method": "POST", "path": "/predict", "scheme": "http",
         "headers": [(b"content-type", b"application/json"),
                     (b"content-length", str(len(BODY)).encode())],
         "http_version": "1.1", "query_string": b"", "root_path": ""}  # fmt: skip


async def _one(app: Any) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app({**SCOPE, "state": {}}, receive, send)
    return status


async def _run(app: Any, n: int) -> float:
    for _ in range(200):  # warm-up (and the inline policy's first measurements)
        assert await _one(app) == 200
    start = time.process_time()
    for _ in range(n):
        await _one(app)
    return (time.process_time() - start) / n * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    import logging

    from slml.runtime.app import create_app
    from slml.runtime.logs import get_logger

    logger = get_logger()
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.addHandler(logging.StreamHandler(open(os.devnull, "w")))  # noqa: SIM115
    app = create_app(args.model)
    runs = [asyncio.run(_run(app, args.requests)) for _ in range(args.reps)]
    print(json.dumps({"us_per_request": sorted(round(r, 1) for r in runs),
                      "python": sys.version.split()[0]}))  # fmt: skip


if __name__ == "__main__":
    main()
