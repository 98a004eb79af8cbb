import json
import threading
from pathlib import Path

import pytest

from slml.state import ProjectState, write_json_atomic


def test_records_round_trip_and_versions(tmp_path: Path) -> None:
    state = ProjectState(tmp_path)
    assert state.read_record("dev", "local") is None
    assert state.next_version("dev", "local") == 1
    with state.lock():
        state.write_record("dev", "local", {"version": 1, "url": "http://x"})
        state.append_history({"event": "deploy", "stage": "dev", "provider": "local",
                              "version": 1})
    assert state.read_record("dev", "local") == {"version": 1, "url": "http://x"}
    assert state.next_version("dev", "local") == 2
    assert state.next_version("prod", "local") == 1
    assert [r["url"] for r in state.records()] == ["http://x"]
    state.delete_record("dev", "local")
    assert state.read_record("dev", "local") is None
    assert state.history()[0]["by"]  # who deployed is recorded


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    write_json_atomic(target, {"a": 1})
    circular: dict = {}
    circular["self"] = circular
    with pytest.raises(ValueError, match="Circular reference"):
        write_json_atomic(target, circular)
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left


def test_lock_serialises_writers(tmp_path: Path) -> None:
    state = ProjectState(tmp_path)
    order: list[str] = []

    def writer(tag: str) -> None:
        with state.lock():
            order.append(f"{tag}-in")
            state.append_history({"event": tag})
            order.append(f"{tag}-out")

    threads = [threading.Thread(target=writer, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # every "in" is directly followed by its own "out": no interleaving
    assert all(order[i].replace("-in", "-out") == order[i + 1] for i in range(0, 8, 2))
    assert len(state.history()) == 4
