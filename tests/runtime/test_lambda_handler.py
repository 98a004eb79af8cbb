"""The Lambda handler answers the event shapes AWS's own tooling emits.

Fixtures (tests/fixtures/events/, see its README): aws-sam-cli's generated sample events
`apigateway http-api-proxy` (HttpApi.json, payload 2.0) and `apigateway aws-proxy`
(AwsProxy.json, REST 1.0), and the Function URL request payload from the Lambda
Developer Guide. Each test changes only method, path, headers and body of a copy.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from slml.runtime.app import create_app
from slml.runtime.lambda_handler import default_model_dir, make_handler

EVENTS = Path(__file__).parents[1] / "fixtures" / "events"


class Context:
    """The attributes of the LambdaContext object AWS passes."""

    function_name = "iris-dev"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    memory_limit_in_mb = 1024

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def http_v2(
    method: str, path: str, body: str | None, *, b64: bool = False, base="apigw-http-api-v2.json"
) -> dict:
    event = copy.deepcopy(load_event(base))
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = ""
    event["headers"] = {
        "content-type": "application/json",
        "host": "id.execute-api.us-east-1.amazonaws.com",
    }
    event["body"] = base64.b64encode(body.encode()).decode() if (b64 and body) else body
    event["isBase64Encoded"] = b64
    return event


def rest_v1(method: str, path: str, body: str | None, *, b64: bool = False) -> dict:
    event = copy.deepcopy(load_event("apigw-rest-v1.json"))
    event["path"] = path
    event["requestContext"]["path"] = f"/prod{path}"
    event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    event["headers"]["Content-Type"] = "application/json"
    event["multiValueHeaders"]["Content-Type"] = ["application/json"]
    event["body"] = base64.b64encode(body.encode()).decode() if (b64 and body) else body
    event["isBase64Encoded"] = b64
    return event


@pytest.fixture(scope="module")
def handler(_iris_artifact_master):
    return make_handler(create_app(_iris_artifact_master))


def answer(response: dict) -> tuple[int, dict]:
    body = response["body"]
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return response["statusCode"], json.loads(body)


PAYLOAD = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]})


@pytest.mark.parametrize("b64", [False, True])
def test_http_api_v2_predicts(handler, b64):
    status, body = answer(handler(http_v2("POST", "/predict", PAYLOAD, b64=b64), Context()))
    assert status == 200 and body["predictions"] == [0, 2]


@pytest.mark.parametrize("b64", [False, True])
def test_rest_api_v1_predicts(handler, b64):
    status, body = answer(handler(rest_v1("POST", "/predict", PAYLOAD, b64=b64), Context()))
    assert status == 200 and body["predictions"] == [0, 2]


def test_function_url_event_predicts(handler):
    event = http_v2("POST", "/predict", PAYLOAD, base="lambda-function-url.json")
    status, body = answer(handler(event, Context()))
    assert status == 200 and body["predictions"] == [0, 2]


def test_health_over_get(handler):
    status, body = answer(handler(http_v2("GET", "/healthz", None), Context()))
    assert status == 200 and body["status"] == "ok"


@pytest.mark.parametrize(
    "body",
    ["{not json", json.dumps({"instances": [[1, 2]]}), json.dumps({"rows": 1})],
)
def test_bad_bodies_are_runtime_4xx_not_lambda_errors(handler, body):
    for event in (http_v2("POST", "/predict", body, b64=True), rest_v1("POST", "/predict", body)):
        status, answer_body = answer(handler(event, Context()))
        assert 400 <= status < 500
        assert set(answer_body["error"]) >= {"code", "message", "request_id"}


def test_unmodified_sam_event_gets_a_404_not_a_crash(handler):
    # the SAM default path /path/to/resource is not a route of the runtime
    status, body = answer(handler(load_event("apigw-http-api-v2.json"), Context()))
    assert status in (404, 405) and "error" in body


def test_default_model_dir_is_under_the_task_root(monkeypatch, tmp_path):
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(tmp_path))
    assert default_model_dir() == str(tmp_path / "model")


def test_module_handler_loads_the_model_at_init_in_a_fresh_interpreter(_iris_artifact_master):
    event = http_v2("POST", "/predict", PAYLOAD, b64=True)
    code = (
        "import json, sys, slml.runtime.lambda_handler as m\n"
        "h = m.handler\n"  # init: the model loads here
        "assert 'sklearn' in sys.modules\n"
        "print(json.dumps(h(json.loads(sys.stdin.read()), None)))\n"
    )
    env = {**os.environ, "SLML_MODEL_DIR": str(_iris_artifact_master)}
    done = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(event), capture_output=True,
        text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    status, body = answer(json.loads(done.stdout.strip().splitlines()[-1]))
    assert status == 200 and body["predictions"] == [0, 2]


def _same_as_mangum_cases() -> list[tuple[str, dict]]:
    body = PAYLOAD
    cases = []
    for name, make in (("v2", http_v2), ("v1", rest_v1)):
        cases += [
            (f"{name} predict", make("POST", "/predict", body)),
            (f"{name} predict b64", make("POST", "/predict", body, b64=True)),
            (f"{name} bad json", make("POST", "/predict", "{nope")),
            (f"{name} 422", make("POST", "/predict", json.dumps({"instances": [[1, 2]]}))),
            (f"{name} 404", make("GET", "/nowhere", None)),
            (f"{name} 405", make("GET", "/predict", None)),
            (f"{name} health", make("GET", "/healthz", None)),
            (f"{name} openapi", make("GET", "/openapi.json", None)),
        ]
    cases.append(("url", http_v2("POST", "/predict", body, base="lambda-function-url.json")))
    return cases


@pytest.mark.parametrize(("label", "event"), _same_as_mangum_cases())
def test_answers_exactly_as_mangum_did(_iris_artifact_master, label, event):
    """The lean adapter replaced Mangum: same status, headers, body and base64 flag."""
    mangum = pytest.importorskip("mangum")
    app = create_app(_iris_artifact_master)
    for key in ("headers", "multiValueHeaders"):
        if isinstance(event.get(key), dict):
            event[key]["x-request-id"] = ["fixed-id"] if key == "multiValueHeaders" else "fixed-id"
    ours = make_handler(app)(copy.deepcopy(event), Context())
    theirs = mangum.Mangum(app, lifespan="off")(copy.deepcopy(event), Context())
    assert ours == theirs, label


def test_an_event_that_is_not_http_is_a_400_not_a_crash(handler):
    response = handler({"Records": [{"eventSource": "aws:s3"}]}, Context())
    status, body = answer(response)
    assert status == 400 and body["error"]["code"] == "invalid_request"
    assert "Function URL" in body["error"]["message"]


def test_cold_import_skips_starlette_anyio_mangum_and_asyncio(_iris_artifact_master):
    # asyncio is checked before the model loads: joblib (the sklearn flavor) imports it
    code = (
        "import json, sys, slml.runtime.lambda_handler as m, slml.runtime.app, "
        "slml.runtime.loader\n"
        "early = ['asyncio'] if 'asyncio' in sys.modules else []\n"
        "h = m.handler\n"
        "print(json.dumps(early + sorted(n for n in ('starlette', 'anyio', 'mangum', "
        "'uvicorn', 'h11') if n in sys.modules)))\n"
    )
    env = {**os.environ, "SLML_MODEL_DIR": str(_iris_artifact_master)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


# What the Lambda path does not import for itself (each costs 0.5-4 ms of a cold start,
# docs/PERFORMANCE.md): a model's framework may still bring some (joblib brings most).
LAZY_STDLIB = ("pathlib", "urllib.parse", "logging", "hashlib", "hmac", "dataclasses", "uuid",
               "random", "threading", "queue", "traceback", "base64")  # fmt: skip


def test_the_lambda_path_imports_no_more_of_the_stdlib_than_onnxruntime_does(_onnx_master):
    """Init and one event with an ONNX model: every heavy stdlib module in the process
    was imported by NumPy/onnxruntime (the floor, in a process of its own), none by slml."""
    report = "print(json.dumps(sorted(n for n in sys.argv[2:] if n in sys.modules)))"
    floor = f"import json, sys, numpy, onnxruntime\n{report}"
    slml = ("import json, sys\nimport slml.runtime.lambda_handler as m\n"
            "assert m.handler(json.loads(sys.argv[1]), None)['statusCode'] == 200\n" + report)
    body = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]})
    event = json.dumps(http_v2("POST", "/predict", body))
    env = {**os.environ, "SLML_MODEL_DIR": str(_onnx_master)}
    found = []
    for code in (floor, slml):
        done = subprocess.run([sys.executable, "-c", code, event, *LAZY_STDLIB], env=env,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        found.append(set(json.loads(done.stdout.strip().splitlines()[-1])))
    assert found[1] - found[0] == set()


def test_snapstart_restore_reseeds_and_renews_capture_names(
    _iris_artifact_master, tmp_path, monkeypatch
) -> None:
    """With AWS's ``snapshot_restore_py`` (the package awslambdaric runs the hooks
    from), the handler registers a hook that each restored environment runs: the random
    generators reseeded from the OS, the capture sink's object names its own."""
    import random

    import numpy as np
    from snapshot_restore_py import get_after_restore

    from slml.runtime.capture_sinks import ObjectSink

    def run_restore_hooks() -> None:  # what awslambdaric does after a restore
        for func, args, kwargs in get_after_restore()[known:]:
            func(*args, **kwargs)

    known = len(get_after_restore())
    monkeypatch.setenv("SLML_CAPTURE", json.dumps({"sink": str(tmp_path / "cap")}))
    app = create_app(_iris_artifact_master)
    app.capture.sink = ObjectSink(lambda key, data: None, prefix="p", version="1")
    make_handler(app)
    assert len(get_after_restore()) == known + 1
    before = app.capture.sink.instance
    app.capture.sink.key()
    run_restore_hooks()
    assert app.capture.sink.instance != before and app.capture.sink.count == 0
    for seed in (random.seed, np.random.seed):
        seed(7)
    seeded = (random.random(), np.random.random())
    for seed in (random.seed, np.random.seed):
        seed(7)
    run_restore_hooks()
    assert random.random() != seeded[0] and np.random.random() != seeded[1]
    app.capture.close()
    del get_after_restore()[known:]


def test_no_restore_hook_outside_lambdas_runtime(_iris_artifact_master, monkeypatch) -> None:
    from slml.runtime.lambda_handler import register_restore_hooks

    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # not installed
    assert register_restore_hooks(create_app(_iris_artifact_master)) is False
