"""Captured traffic never slows or fails a request: a slow or broken sink costs records,
counted on /metrics."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from slml.runtime.capture import Capture
from slml.runtime.capture_sinks import FileSink, open_sink, split_url
from tests.runtime.runtime_support import make_client
from tests.runtime.test_runtime_metrics import ROW, series


class ListSink:
    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def write(self, lines: list[bytes]) -> None:
        self.lines.extend(lines)


class BrokenSink:
    def write(self, lines: list[bytes]) -> None:
        raise ConnectionError("sink is down")


class StuckSink:
    """Blocks every write until released: a sink that hangs."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def write(self, lines: list[bytes]) -> None:
        self.release.wait(10)


def wait_for(check, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_records_hold_id_version_time_latency_inputs_outputs():
    sink = ListSink()
    cap = Capture(sink, model="iris", version="4", flush_seconds=0.05)
    cap.offer("r1", 0.0123, json.dumps({"instances": [ROW]}).encode(), False, {"predictions": [0]})
    cap.offer("r2", 0.001, b"5.1,3.5,1.4,0.2\n", True, {"predictions": [1]})
    cap.close()
    first, second = (json.loads(x) for x in sink.lines)
    assert first["request_id"] == "r1" and first["version"] == "4" and first["model"] == "iris"
    assert first["inputs"] == {"instances": [ROW]} and first["outputs"] == [0]
    assert first["latency_ms"] == 12.3 and first["time"].endswith("+00:00")
    assert second["inputs"] == "5.1,3.5,1.4,0.2\n"
    assert cap.written == 2 and cap.dropped == 0


def test_inputs_only_and_sampling():
    sink = ListSink()
    draws = iter([0.05, 0.5, 0.09, 0.99])
    cap = Capture(sink, model="m", version="1", sample=0.1, inputs_only=True,
                  draw=lambda: next(draws), flush_seconds=0.05)  # fmt: skip
    for i in range(4):
        cap.offer(f"r{i}", 0.0, b"[]", False, {"predictions": [i]})
    cap.close()
    records = [json.loads(x) for x in sink.lines]
    assert [r["request_id"] for r in records] == ["r0", "r2"]
    assert all("outputs" not in r for r in records)


def test_a_full_queue_drops_and_counts_without_blocking():
    sink = StuckSink()
    cap = Capture(sink, model="m", version="1", queue_size=5, batch=1, flush_seconds=0.01)
    start = time.perf_counter()
    for i in range(200):
        cap.offer(str(i), 0.0, b"{}", False, {"predictions": []})
    assert time.perf_counter() - start < 0.5
    assert cap.dropped_full >= 190
    sink.release.set()
    cap.close()


def test_a_broken_sink_counts_drops(_iris_artifact_master: Path, monkeypatch: pytest.MonkeyPatch):
    errors: list[BaseException] = []
    cap = Capture(BrokenSink(), model="m", version="1", flush_seconds=0.01, on_error=errors.append)
    cap.offer("a", 0.0, b"{}", False, {"predictions": []})
    wait_for(lambda: cap.dropped_sink == 1)
    assert isinstance(errors[0], ConnectionError)
    cap.close()


def test_the_app_serves_every_request_with_the_sink_down(
    tmp_path: Path, _iris_artifact_master: Path, monkeypatch: pytest.MonkeyPatch
):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the capture directory should be")
    sink_dir = tmp_path / "cap"
    monkeypatch.setenv("SLML_CAPTURE", json.dumps({"sample": 1.0, "sink": str(sink_dir),
                                                   "flush_seconds": 0.05}))  # fmt: skip
    client = make_client(_iris_artifact_master)
    sink_dir.rmdir()
    sink_dir.symlink_to(blocker)  # every write now fails: NotADirectoryError
    for _ in range(20):
        assert client.post("/predict", json={"instances": [ROW]}).status_code == 200
    wait_for(lambda: series(client.get("/metrics").text, "slml_capture_dropped_total") == 20)
    assert series(client.get("/metrics").text, "slml_capture_records_total") == 0


def test_the_app_captures_to_jsonl(
    tmp_path: Path, _iris_artifact_master: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SLML_CAPTURE", json.dumps({"sink": f"file://{tmp_path}",
                                                   "flush_seconds": 0.05}))  # fmt: skip
    client = make_client(_iris_artifact_master)
    ids = []
    for i in range(5):
        r = client.post("/predict", json={"instances": [ROW] * (i + 1)})
        ids.append(r.headers["x-request-id"])
    wait_for(lambda: series(client.get("/metrics").text, "slml_capture_records_total") == 5)
    records = [json.loads(x) for f in tmp_path.glob("*.jsonl") for x in f.read_text().splitlines()]
    assert sorted(r["request_id"] for r in records) == sorted(ids)
    assert {len(r["inputs"]["instances"]) for r in records} == {1, 2, 3, 4, 5}


def test_a_malformed_setting_refuses_to_start(
    _iris_artifact_master: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SLML_CAPTURE", '{"sample": 2, "sink": "/tmp/x"}')
    with pytest.raises(ValueError, match="between 0 and 1"):
        make_client(_iris_artifact_master)


def test_file_sink_rotates(tmp_path: Path):
    sink = FileSink(tmp_path, max_file_bytes=100)
    for _ in range(5):
        sink.write([b'{"x": "' + b"y" * 60 + b'"}\n'])
    files = sorted(tmp_path.glob("*.jsonl"))
    assert len(files) == 3  # 71-byte lines, 100-byte limit: rotated after every second
    assert sum(len(f.read_text().splitlines()) for f in files) == 5


def test_sink_urls():
    assert split_url("s3://b/some/prefix/") == ("s3", "b", "some/prefix")
    assert split_url("/var/cap") == ("file", "", "/var/cap")
    assert split_url("file:///var/cap") == ("file", "", "/var/cap")
    with pytest.raises(ValueError, match="use a path"):
        split_url("ftp://x/y")
    with pytest.raises(ValueError, match="no bucket"):
        open_sink("gs:///p", version="1")
