"""`slml capture pull`: records since a time, from files and from S3 (moto), as JSONL
or Parquet; and the setting a deploy hands to the runtime."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from slml.capture import capture_env
from slml.capture.pull import parse_since, records, write
from slml.config import parse_config
from slml.errors import ConfigError, UsageError
from slml.runtime.capture import Capture
from slml.runtime.capture_sinks import open_sink

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def record(rid: str, at: datetime, **extra) -> bytes:
    row = {"request_id": rid, "model": "iris", "version": "2", "time": at.isoformat(),
           "latency_ms": 1.5, "inputs": {"instances": [[1, 2]]}, "outputs": [0]}
    row.update(extra)
    return json.dumps(row).encode() + b"\n"


def test_parse_since():
    assert parse_since("30m", now=NOW) == NOW - timedelta(minutes=30)
    assert parse_since("2d", now=NOW) == NOW - timedelta(days=2)
    assert parse_since("2026-11-30T08:00:00") == datetime(2026, 11, 30, 8, tzinfo=UTC)
    assert parse_since(None) is None
    with pytest.raises(UsageError, match="neither a duration nor a time"):
        parse_since("yesterday")


def test_file_records_since_and_a_torn_last_line(tmp_path: Path):
    (tmp_path / "capture-1.jsonl").write_bytes(
        record("old", NOW - timedelta(hours=3)) + record("new", NOW) + b'{"request_id": "to'
    )
    assert [r["request_id"] for r in records(str(tmp_path))] == ["old", "new"]
    since = NOW - timedelta(hours=1)
    assert [r["request_id"] for r in records(f"file://{tmp_path}", since=since)] == ["new"]
    assert list(records(str(tmp_path / "missing"))) == []


@mock_aws
def test_s3_records_skip_objects_written_before_since(tmp_path: Path):
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket="cap")
    client.put_object(Bucket="cap", Key="p/v2/20261201T080000.000000Z-1-1.jsonl",
                      Body=record("early", NOW - timedelta(hours=4)))  # fmt: skip
    cap = Capture(open_sink("s3://cap/p", version="2", client=client), model="iris", version="2")
    cap.offer("late", 0.002, b'{"instances": [[1, 2]]}', False, {"predictions": [1]})
    cap.close()
    got = list(records("s3://cap/p", since=datetime.now(UTC) - timedelta(minutes=5),
                       client=client))  # fmt: skip
    assert [r["request_id"] for r in got] == ["late"]
    assert len(list(records("s3://cap/p", client=client))) == 2


def test_parquet_and_jsonl_output(tmp_path: Path):
    rows = [json.loads(record("a", NOW)), json.loads(record("b", NOW))]
    del rows[1]["outputs"]  # an inputs_only record
    assert write(iter(rows), tmp_path / "out.parquet", fmt="parquet") == 2
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column_names == ["request_id", "model", "version", "time", "latency_ms",
                                  "inputs", "outputs"]  # fmt: skip
    got = table.to_pylist()
    assert json.loads(got[0]["inputs"]) == {"instances": [[1, 2]]} and got[1]["outputs"] is None
    assert got[0]["time"] == NOW
    assert write(iter(rows), tmp_path / "out.jsonl", fmt="jsonl") == 2
    assert json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])["request_id"] == "a"
    with pytest.raises(UsageError):
        write(iter(rows), tmp_path / "x", fmt="csv")


def test_capture_section_and_the_runtime_setting(tmp_path: Path):
    base = "name: iris\nmodel: model\n"
    assert capture_env(parse_config(base, base_dir=tmp_path), default=tmp_path) == {}
    cfg = parse_config(base + "capture: {sample: 0.25, inputs_only: true}\n", base_dir=tmp_path)
    env = json.loads(capture_env(cfg, default=tmp_path / "cap")["SLML_CAPTURE"])
    assert env == {"sample": 0.25, "inputs_only": True, "sink": str(tmp_path / "cap"),
                   "max_file_mb": 64}  # fmt: skip
    assert capture_env(cfg, default=None) == {}  # a cloud target needs a sink of its own
    s3 = parse_config(base + "capture: {sink: 's3://b/p'}\n", base_dir=tmp_path)
    assert json.loads(capture_env(s3, default=None)["SLML_CAPTURE"])["sink"] == "s3://b/p"
    for bad in ("sample: 1.5", "sink: 'ftp://x'", "rate: 1"):
        with pytest.raises(ConfigError, match="capture"):
            parse_config(base + f"capture: {{{bad}}}\n", base_dir=tmp_path)
