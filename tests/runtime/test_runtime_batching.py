"""Micro-batching: concurrent requests share predict calls, each keeps its own answer,
validation error and request id (the real ASGI app, in process, over httpx)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from runtime_support import LINEAR_SIGNATURE, write_python_artifact

from slml.runtime.app import create_app
from slml.runtime.batching import Batcher, batching_from_env, merge, split
from slml.runtime.validation import Batch

SLOW_CODE = """
    import time

    class Model:
        def predict(self, rows):
            time.sleep(0.05)  # predict dominates: requests pile up meanwhile
            if any(row[0] < 0 for row in rows):
                raise RuntimeError("boom: negative a")
            return [2 * row[0] + row[1] for row in rows]
"""


@pytest.fixture
def slow_artifact(tmp_path: Path) -> Path:
    return write_python_artifact(tmp_path / "slow", SLOW_CODE, module="slml_test_slow",
                                 signature=LINEAR_SIGNATURE)  # fmt: skip


def run(coro):
    """Run ``coro`` on a private loop. Not asyncio.run: that leaves the main thread with
    no event loop set, and Pulumi's mocks (tests/infra) ask for it later in the session."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def _batch(*rows: list[float]) -> Batch:
    return Batch(rows=list(rows), raw=list(rows), key="instances", validated=True,
                 columns=["a", "b"], dtype="object")  # fmt: skip


def test_merge_and_split_keep_the_order_of_rows():
    a, b = _batch([1, 2]), _batch([3, 4], [5, 6])
    merged = merge([a, b])
    assert merged.rows == [[1, 2], [3, 4], [5, 6]] and merged.validated
    assert split(["x", "y", "z"], [a, b]) == [["x"], ["y", "z"]]


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, None), ({"SLML_BATCH_MAX_SIZE": "32"}, (32, 0.005)),
     ({"SLML_BATCH_MAX_SIZE": "8", "SLML_BATCH_MAX_LATENCY_MS": "2"}, (8, 0.002))],
)  # fmt: skip
def test_batching_settings_from_the_environment(monkeypatch, env, expected):
    for name in ("SLML_BATCH_MAX_SIZE", "SLML_BATCH_MAX_LATENCY_MS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert batching_from_env() == expected


@pytest.mark.parametrize("size", ["0", "lots"])
def test_bad_batching_settings_are_refused(monkeypatch, size):
    monkeypatch.setenv("SLML_BATCH_MAX_SIZE", size)
    with pytest.raises(ValueError, match="SLML_BATCH_MAX_SIZE"):
        batching_from_env()


def test_a_lone_request_is_not_delayed():
    calls: list[int] = []

    def predict(batch: Batch) -> list[int]:
        calls.append(len(batch))
        return [0] * len(batch)

    async def go() -> list[int]:
        batcher = Batcher(predict, max_size=64, max_latency_s=5.0)  # a long window
        return await asyncio.wait_for(batcher.submit(_batch([1, 2]), waiting=1), 2.0)

    assert run(go()) == [0] and calls == [1]


async def _fire(app, bodies: list[dict]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await asyncio.gather(*(
            client.post("/predict", content=json.dumps(body),
                        headers={"content-type": "application/json", "x-request-id": f"r{i}"})
            for i, body in enumerate(bodies)
        ))  # fmt: skip


def test_concurrent_requests_share_calls_and_keep_their_own_answers(monkeypatch, slow_artifact):
    monkeypatch.setenv("SLML_BATCH_MAX_SIZE", "64")
    monkeypatch.setenv("SLML_BATCH_MAX_LATENCY_MS", "20")
    app = create_app(slow_artifact)
    bodies = [{"instances": [[float(i), i]]} for i in range(16)]
    bodies[3] = {"instances": [[1.0, "x"]]}  # its own validation error
    bodies[7] = {"instances": [[-1.0, 1], [2.0, 2]]}  # the model fails on its rows only
    responses = run(_fire(app, bodies))
    assert app.batcher is not None and app.batcher.calls < 14  # merged, not one call each
    for i, r in enumerate(responses):
        assert r.headers["x-request-id"] == f"r{i}"
        if i == 3:
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input"
            assert r.json()["error"]["request_id"] == "r3"
        elif i == 7:
            assert r.status_code == 500 and r.json()["error"]["code"] == "model_error"
        else:
            assert r.status_code == 200, r.text
            assert r.json()["predictions"] == [2 * i + i]
