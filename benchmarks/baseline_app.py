"""The hand-written baseline: the smallest reasonable Starlette app serving the same
model file, as someone would write it without slml.

    python benchmarks/baseline_app.py --model FILE [--onnx] --port N

POST /predict {"instances": [[...], ...]} → {"predictions": [...]}; GET /healthz.
uvicorn, one worker, loopback, no access log: the same server settings slml uses.
``--server plain`` (the default) is uvicorn as ``pip install uvicorn`` gives it: h11 and
asyncio's loop, whatever else is installed. ``--server standard`` is what
``pip install 'uvicorn[standard]'`` gives: httptools and uvloop (the benchmark runs it
from a virtualenv that has them, benchmarks/anchors.py).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def make_app(model_file: str, *, onnx: bool) -> Starlette:
    predict = _onnx_predictor(model_file) if onnx else _joblib_predictor(model_file)

    async def predict_route(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse({"predictions": predict(body["instances"])})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/predict", predict_route, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
        ]
    )


def _joblib_predictor(model_file: str) -> Any:
    import joblib
    import numpy as np

    model = joblib.load(model_file)
    return lambda rows: model.predict(np.asarray(rows, dtype=np.float64)).tolist()


def _onnx_predictor(model_file: str) -> Any:
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(model_file, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def predict(rows: list[list[float]]) -> list[Any]:
        return session.run(None, {name: np.asarray(rows, dtype=np.float32)})[0].tolist()

    return predict


# uvicorn's (http, loop) settings: plain uvicorn, and uvicorn[standard]
SERVERS = {"plain": ("h11", "asyncio"), "standard": ("httptools", "uvloop")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--onnx", action="store_true")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server", choices=sorted(SERVERS), default="plain")
    args = parser.parse_args()
    app = make_app(args.model, onnx=args.onnx)
    import uvicorn

    print(json.dumps({"event": "ready", "port": args.port}), flush=True)
    http, loop = SERVERS[args.server]
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, workers=1, access_log=False,
        log_level="warning", lifespan="off", http=http, loop=loop,
    )  # fmt: skip


if __name__ == "__main__":
    main()
