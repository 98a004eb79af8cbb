import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from slml.engine import resolve_passphrase
from slml.errors import DeployError
from slml.state import (
    ProjectState,
    RecordUnreadable,
    read_or_create_secret,
    secret_warnings,
    write_json_atomic,
)


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


# -- secrets (D10, D11, D12) -----------------------------------------------------------


def test_an_empty_secret_is_refused_never_read_as_no_key(tmp_path: Path) -> None:
    key = tmp_path / ".slml" / "aws" / "dev" / "api_key"
    key.parent.mkdir(parents=True)
    key.write_text("")  # what a full disk left after the first write
    with pytest.raises(DeployError, match=r"api_key is empty") as err:
        read_or_create_secret(key)
    assert str(key) in str(err.value) and "delete the file and deploy again" in str(err.value)
    key.write_text("two\nlines\n")
    with pytest.raises(DeployError, match="control characters or more than one line"):
        read_or_create_secret(key)


def test_a_new_secret_is_whole_private_and_ignored_by_git(tmp_path: Path) -> None:
    key = tmp_path / ".slml" / "aws" / "dev" / "api_key"
    value = read_or_create_secret(key)
    assert len(value) >= 40 and read_or_create_secret(key) == value  # stable
    assert key.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in key.parent.iterdir()) == ["api_key"]  # no temp file left
    ignore = (tmp_path / ".slml" / ".gitignore").read_text().splitlines()
    assert "passphrase" in ignore and "api_key" in ignore
    assert secret_warnings([key]) == []
    key.chmod(0o644)
    (warning,) = secret_warnings([key])
    assert "can be read by other users (mode 644)" in warning and "chmod 600" in warning


def test_racing_creators_agree_on_one_secret(tmp_path: Path) -> None:
    path = tmp_path / "secret" / "passphrase"
    values: list[str] = []
    threads = [
        threading.Thread(target=lambda: values.append(read_or_create_secret(path)))
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(values)) == 1 and len(values) == 6


def test_gitignore_keeps_secrets_out_of_a_real_git_repo(tmp_path: Path) -> None:
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    subprocess.run([git, "init", "-q", str(tmp_path)], check=True)
    state = ProjectState(tmp_path)
    read_or_create_secret(state.path("pulumi", "passphrase"))
    read_or_create_secret(state.path("aws", "dev", "api_key"))
    with state.lock():
        state.write_record("dev", "local", {"version": 1})
    shown = subprocess.run([git, "-C", str(tmp_path), "status", "--porcelain", "-uall"],
                           check=True, capture_output=True, text=True).stdout  # fmt: skip
    assert "deployments/dev/local.json" in shown
    assert "passphrase" not in shown and "api_key" not in shown and "lock" not in shown


def test_passphrase_file_named_but_missing_fails(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "pass"
    env = {"PULUMI_CONFIG_PASSPHRASE_FILE": str(missing)}
    with pytest.raises(DeployError, match=r"PULUMI_CONFIG_PASSPHRASE_FILE names .* not exist"):
        resolve_passphrase(tmp_path / "pulumi", env)
    assert not missing.exists()  # never silently created
    missing.parent.mkdir()
    missing.write_text("\n")
    with pytest.raises(DeployError, match="is empty"):
        resolve_passphrase(tmp_path / "pulumi", env)
    (tmp_path / "pulumi").mkdir()
    (tmp_path / "pulumi" / "passphrase").write_text("")
    with pytest.raises(DeployError, match="restore it from a backup"):
        resolve_passphrase(tmp_path / "pulumi", {})


# -- records and versions (D24, D25) ---------------------------------------------------


def test_versions_never_repeat_when_history_is_truncated(tmp_path: Path) -> None:
    state = ProjectState(tmp_path)
    with state.lock():
        state.write_record("dev", "local", {"version": 7})
    assert state.next_version("dev", "local") == 8  # no history at all
    state.path("history.jsonl").write_text('{"event": "deploy", "stage": "dev", "provid')
    assert state.next_version("dev", "local", seen=[9, 3]) == 10
    state.append_history({"event": "deploy", "stage": "dev", "provider": "local",
                          "version": 12})  # fmt: skip
    assert state.history()[-1]["version"] == 12  # not glued to the cut line
    assert state.next_version("dev", "local") == 13


@pytest.mark.parametrize("text", ['{"version": 1, "pi', "[1, 2]", "null"])
def test_an_unreadable_record_is_reported_and_listed(tmp_path: Path, text: str) -> None:
    state = ProjectState(tmp_path)
    path = state.record_path("dev", "local")
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(RecordUnreadable, match="unreadable") as err:
        state.read_record("dev", "local")
    assert "destroy --force" in str(err.value)
    (listed,) = state.records()
    assert listed["state"] == "unreadable" and listed["stage"] == "dev"
    aside = state.set_aside_record("dev", "local")
    assert aside is not None and aside.read_text() == text
    assert state.read_record("dev", "local") is None


def test_lock_tells_the_waiter_through_a_callback_never_stdout(tmp_path: Path, capfd) -> None:
    state = ProjectState(tmp_path)
    told: list[str] = []
    with state.lock():
        waiter = threading.Thread(target=lambda: state.lock(on_wait=told.append).__enter__())
        waiter.start()
        deadline = time.monotonic() + 10
        while not told and time.monotonic() < deadline:
            time.sleep(0.01)
    waiter.join(10)
    assert told and "waiting for another slml command" in told[0]
    assert capfd.readouterr().out == ""
