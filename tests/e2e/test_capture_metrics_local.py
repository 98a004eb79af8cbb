"""Captured traffic and metrics on a real local deployment, through the `slml` script:
every request is captured and pulled back as Parquet; `slml metrics` counts them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from cli_project import run_slml

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ROW = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture
def iris(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
         monkeypatch: pytest.MonkeyPatch):  # fmt: skip
    dest = tmp_path / "iris"
    dest.mkdir()
    for name in ("train.py", "slml.yaml"):
        shutil.copy(ROOT / "examples" / "iris" / name, dest / name)
    with open(dest / "slml.yaml", "a", encoding="utf-8") as fh:
        fh.write("\ncapture:\n  sample: 1.0\n")
    monkeypatch.setenv("SLML_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "slml-cache"))
    subprocess.run([sys.executable, "train.py"], cwd=dest, check=True, capture_output=True,
                   timeout=300)  # fmt: skip
    yield dest
    run_slml(dest, "destroy", check=False)


def test_capture_pull_and_metrics_match_the_requests_sent(iris: Path):
    run_slml(iris, "deploy")
    url = json.loads(run_slml(iris, "status", "--json").stdout)["url"]
    sent = []
    with httpx.Client(timeout=30) as client:
        for i in range(40):
            rid = f"req-{i}"
            body = {"instances": [ROW] * (1 + i % 3)}
            r = client.post(f"{url}/predict", json=body, headers={"x-request-id": rid})
            assert r.status_code == 200
            sent.append((rid, body))
        for _ in range(4):
            assert client.post(f"{url}/predict", content=b"{oops").status_code == 400
    summary = json.loads(run_slml(iris, "metrics", "--json").stdout)
    (live,) = summary
    assert live["requests"] == 44 and live["errors"] == 4
    assert live["errors_by_code"] == {"invalid_json": 4}
    assert live["error_rate"] == pytest.approx(4 / 44)
    assert live["p50_ms"] > 0 and live["p99_ms"] >= live["p50_ms"]
    assert live["batch_rows"] == pytest.approx(sum(1 + i % 3 for i in range(40)) / 40, abs=0.01)

    out = iris / "captured.parquet"
    deadline = time.monotonic() + 30
    while True:  # the writer flushes every 2 s
        run_slml(iris, "capture", "pull", "--since", "1h", str(out))
        table = pq.read_table(out).to_pylist()
        if len(table) >= 40 or time.monotonic() > deadline:
            break
        time.sleep(1)
    by_id = {row["request_id"]: row for row in table}
    assert set(by_id) == {rid for rid, _ in sent}
    for rid, body in sent:
        row = by_id[rid]
        assert json.loads(row["inputs"]) == body
        assert len(json.loads(row["outputs"])) == len(body["instances"])
        assert row["version"] == live["version"]
    later = run_slml(iris, "capture", "pull", "--since", "2999-01-01T00:00:00", str(out))
    assert "0 records" in later.stderr
