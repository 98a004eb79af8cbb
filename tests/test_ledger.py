"""The deployment ledger: typed, versioned records and events; old files still read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slml.errors import DeployError
from slml.ledger import SCHEMA_VERSION, DeploymentRecord, HistoryEvent, Ledger, Live
from slml.state import ProjectState, RecordUnreadable

OLD_LOCAL = {"name": "iris", "stage": "dev", "provider": "local", "version": 3,
             "url": "http://127.0.0.1:8080", "port": 8080, "admin_port": 9001, "pid": 4242,
             "model_sha256": "abc", "lock_hash": "def", "bundle": "/b/v3"}  # fmt: skip


def _ledger(tmp_path: Path) -> Ledger:
    return Ledger(ProjectState(tmp_path))


def test_an_unversioned_record_reads_and_is_migrated_on_write(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    ledger.state.write_record("dev", "local", OLD_LOCAL)  # as an older slml wrote it
    record = ledger.read("dev", "local")
    assert record is not None
    assert [(t.version, t.percent, t.role, t.ref) for t in record.traffic] == [
        (3, 100.0, "primary", "9001")]
    info = record.info(3)
    assert info is not None and (info.model_sha256, info.lock_hash) == ("abc", "def")
    assert record.pids == [4242]
    ledger.write(record)
    on_disk = json.loads(ledger.state.record_path("dev", "local").read_text())
    assert on_disk["schema_version"] == SCHEMA_VERSION
    assert on_disk["traffic"] == [{"version": 3, "percent": 100.0, "role": "primary",
                                   "ref": "9001"}]  # fmt: skip


def test_unknown_fields_of_a_newer_slml_are_kept(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    ledger.state.write_record("dev", "aws", {**OLD_LOCAL, "provider": "aws",
                                             "schema_version": 2, "future": {"x": 1}})
    record = ledger.read("dev", "aws")
    assert record is not None
    ledger.write(record)
    assert json.loads(ledger.state.record_path("dev", "aws").read_text())["future"] == {"x": 1}


def test_a_record_of_the_wrong_shape_is_unreadable(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    ledger.state.write_record("dev", "local", {**OLD_LOCAL, "version": "three"})
    with pytest.raises(RecordUnreadable, match="version"):
        ledger.read("dev", "local")


def test_a_local_failure_reason_reads_as_error(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    ledger.state.append_history({"event": "deploy-failed", "provider": "local",
                                 "stage": "dev", "version": 2, "reason": "exit code 3"})
    ledger.append(HistoryEvent(event="deploy-failed", provider="local", stage="dev",
                               version=3, error="never healthy"))  # fmt: skip
    assert [e.error for e in ledger.history()] == ["exit code 3", "never healthy"]
    assert ledger.state.history()[-1]["schema_version"] == SCHEMA_VERSION


def test_rollback_target_is_the_newest_before_the_current(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    ledger.write(DeploymentRecord(stage="dev", provider="aws", version=5, url="u",
                                  traffic=[Live(version=5, percent=100, role="primary")]))
    assert ledger.rollback_target("dev", "aws", version=None, candidates=[1, 3, 5, 6]) == 3
    assert ledger.rollback_target("dev", "aws", version=6, candidates=[1, 3, 5, 6]) == 6
    with pytest.raises(DeployError, match=r"version 5 .*again: 1, 3\)"):
        ledger.rollback_target("dev", "aws", version=5, candidates=[1, 3, 5])
    with pytest.raises(DeployError, match="an earlier version"):
        ledger.rollback_target("dev", "aws", version=None, candidates=[5])
