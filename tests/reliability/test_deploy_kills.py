"""SIGKILL of ``slml deploy`` (the real CLI) at random points of a redeploy.

After every kill, once the dust settles (a server the record does not name must stop by
itself within seconds), the stage has exactly one server process, the one the record
names, answering on the recorded port and admin port; every file of ``.slml/`` that
slml reads parses. ``slml destroy`` at the end leaves no server of the stage running.

Bounded: ``SLML_FAULT_KILLS`` kills (default 20), loopback only, and a time budget; the
kill points are spread uniformly over the duration of one measured redeploy, with a
fixed seed (``SLML_FAULT_SEED``) printed on failure so a run can be replayed."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks.procs import http_status
from slml.providers import local_process as proc
from tests.reliability.deployments import Project, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

KILLS = int(os.environ.get("SLML_FAULT_KILLS", "20"))
SEED = int(os.environ.get("SLML_FAULT_SEED", "1127"))
BUDGET_S = 420.0
SETTLE_S = 15.0


def _stage_servers(project: Project) -> set[int]:
    """Servers of the stage, found both by the marker they carry and by command line."""
    marked = set(proc.find_servers(proc.stage_marker(project.root.resolve(), "dev")))
    return marked | set(project.servers())


def _state_readable(project: Project) -> dict[str, Any] | None:
    slml_dir = project.root / ".slml"
    for path in (slml_dir / "deployments").glob("*/*.json"):
        json.loads(path.read_text())
    history = (slml_dir / "history.jsonl").read_text().splitlines()
    for line in history[:-1]:  # only the last line may be cut short by a kill
        json.loads(line)
    return project.record()


def _consistent(project: Project) -> tuple[bool, str]:
    record = _state_readable(project)
    servers = _stage_servers(project)
    if record is None:
        return False, f"no record; servers {sorted(servers)}"
    if servers != {record["pid"]}:
        return False, f"servers {sorted(servers)} but the record names {record['pid']}"
    own = http_status(f"http://127.0.0.1:{record['admin_port']}/healthz")
    shared = http_status(record["url"] + "/healthz")
    if own != 200 or shared != 200:
        return False, f"recorded server answers {own} (admin), {shared} (port)"
    return True, "ok"


def _settled(project: Project) -> str:
    last = ["never checked"]

    def check() -> bool:
        ok, last[0] = _consistent(project)
        return ok

    return "ok" if wait_for(check, timeout=SETTLE_S, interval=0.2) else last[0]


def _measure_deploy(project: Project) -> tuple[float, float]:
    """(seconds until the new server process exists, seconds until deploy exits)."""
    before = _stage_servers(project)
    start = time.monotonic()
    deploy = project.popen("deploy", "--json")
    spawned = None
    while deploy.poll() is None:
        if spawned is None and _stage_servers(project) - before:
            spawned = time.monotonic() - start
        time.sleep(0.02)
    total = time.monotonic() - start
    _out, err = deploy.communicate()
    assert deploy.returncode == 0, err
    return (spawned if spawned is not None else total / 2), total


def _kill_deploy_after(project: Project, delay: float) -> int:
    """Start ``slml deploy``, SIGKILL it after ``delay`` s; how many servers of the
    stage ran at that moment."""
    deploy = project.popen("deploy", "--json")
    try:
        time.sleep(delay)
        running = len(_stage_servers(project))
        os.kill(deploy.pid, signal.SIGKILL)
        deploy.communicate(timeout=30)
        return running
    finally:
        proc_group_kill(deploy.pid)


def proc_group_kill(pgid: int) -> None:
    """Whatever else the killed CLI had started in its own group (e.g. uv)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def test_sigkill_at_random_points_of_deploy_leaves_one_recorded_server(
    project: Project,
) -> None:
    project.deploy()  # builds the environment once; later deploys reuse it
    spawned, total = _measure_deploy(project)
    rng = random.Random(SEED)
    started = time.monotonic()
    outcomes: list[tuple[float, int, int]] = []
    for kill in range(KILLS):
        assert time.monotonic() - started < BUDGET_S, f"over budget after {kill} kills"
        # every other kill falls after the new server process exists (the D27 window)
        low = 0.0 if kill % 2 == 0 else spawned
        delay = rng.uniform(low, total * 1.1)
        servers_at_kill = _kill_deploy_after(project, delay)
        verdict = _settled(project)
        record = project.record() or {}
        outcomes.append((round(delay, 2), servers_at_kill, record.get("version", 0)))
        assert verdict == "ok", (
            f"kill {kill + 1}/{KILLS} after {delay:.2f} s (seed {SEED}): {verdict}; {outcomes}"
        )
    elapsed = time.monotonic() - started
    print(f"\n{KILLS} kills in {elapsed:.0f} s; a deploy spawns its server after "
          f"{spawned:.1f} s and ends after {total:.1f} s; (delay, servers at kill, "
          f"recorded version): {outcomes}")  # fmt: skip
    assert any(n >= 2 for _d, n, _v in outcomes), "no kill fell while two servers ran"

    versions = [e["version"] for e in project.history() if e.get("event") == "deploy"]
    assert versions == sorted(set(versions)), versions  # never a version number twice
    done = project.cli("destroy")
    assert done.returncode == 0, done.stderr
    assert wait_for(lambda: not _stage_servers(project), timeout=SETTLE_S), _stage_servers(
        project
    )
    assert not (project.root / ".slml" / "deployments" / "dev" / "local.json").exists()


def test_destroy_force_stops_servers_behind_a_corrupted_record(project: Project) -> None:
    first = project.deploy()
    record_path = project.root / ".slml" / "deployments" / "dev" / "local.json"
    record_path.write_text('{"version": 1, "pi')  # cut short
    status = project.cli("status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["state"] == "unknown"
    refused = project.cli("destroy")
    assert refused.returncode == 2 and "--force" in refused.stderr, refused.stderr
    assert proc.is_our_server(first["outputs"]["pid"])  # nothing stopped, nothing deleted
    assert record_path.exists()
    listed = project.cli("list", "--json")
    assert "unreadable" in listed.stdout, listed.stdout

    forced = project.cli("destroy", "--force")
    assert forced.returncode == 0, forced.stderr
    assert wait_for(lambda: not _stage_servers(project), timeout=SETTLE_S)
    assert not record_path.exists()
    assert list(Path(record_path.parent).glob("local.json.unreadable-*"))  # set aside
    again = project.deploy()
    assert again["version"] > first["version"]
