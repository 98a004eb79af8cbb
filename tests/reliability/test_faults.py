"""Faults against real local deployments, through the real CLI (subprocesses):

- a server killed hard (SIGKILL) mid-traffic: ``slml status`` says down, ``slml deploy``
  brings it back;
- a deploy interrupted (SIGINT) once its new server runs: the previous deployment is
  still recorded and serving, the new server is gone;
- two deploys at once: one waits for the lock (or refuses), ``.slml/`` stays consistent,
  exactly one server answers, no orphans;
- a tampered artifact: the deploy fails, says why, and the old version keeps serving.

Environments are built once per session (shared SLML_CACHE_DIR)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import _train_iris, write_sklearn_artifact
from tests.reliability.deployments import Project, predict, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def new_version(project: Project, version: str) -> None:
    """Replace the project's model with a retrained one (same requirements)."""
    import shutil

    shutil.rmtree(project.model)
    write_sklearn_artifact(project.model, _train_iris(max_iter=300), version=version)


def test_kill9_mid_traffic_then_status_down_then_deploy_recovers(project: Project) -> None:
    first = project.deploy()
    pid = int(first["outputs"]["pid"])
    load = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.loadgen", "--url", first["url"] + "/predict",
         "--body", '{"instances": [[5.1, 3.5, 1.4, 0.2]]}', "--concurrency", "8",
         "--requests", "100000", "--duration", "20"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        log = Path(first["outputs"]["log"])
        served = lambda: log.read_text().count('"/predict"') >= 50  # noqa: E731
        assert wait_for(served, timeout=60), "no traffic reached the server"
        os.kill(pid, signal.SIGKILL)
        out, _ = load.communicate(timeout=60)
    finally:
        if load.poll() is None:
            load.kill()
    traffic = json.loads(out)
    assert traffic["statuses"].get("200", 0) > 0  # it was serving before the kill

    status = project.status()
    assert status["state"] == "down", status
    assert predict(first["url"])[0] is None

    second = project.deploy()
    assert second["version"] > first["version"]
    assert project.status()["state"] == "running"
    code, body = predict(second["url"])
    assert code == 200 and len(body["predictions"]) == 1


SLOW_LOADING = """
    import time

    class Model:
        def load(self, data_dir):
            time.sleep(10)  # still loading when the test interrupts the deploy

        def predict(self, rows):
            return [0 for _ in rows]
"""


def slow_version(project: Project, version: str) -> None:
    """Replace the model with one whose server needs 10 s to become healthy, so the
    deploy is surely still waiting for it when the test interrupts it (a fast model
    can be promoted between the test seeing its server and the signal arriving)."""
    import shutil

    from slml.runtime.manifest import MANIFEST_FILE
    from tests.runtime.runtime_support import write_manifest

    name = json.loads((project.model / MANIFEST_FILE).read_text())["name"]
    shutil.rmtree(project.model)
    code = project.model / "model" / "code"
    code.mkdir(parents=True)
    (code / "slml_test_slow.py").write_text(textwrap.dedent(SLOW_LOADING))
    write_manifest(project.model, name=name, version=version, flavor="python",
                   flavor_options={"module": "slml_test_slow", "class": "Model",
                                   "code_dir": "model/code"})  # fmt: skip


def _interrupt_deploy(project: Project) -> subprocess.CompletedProcess[str]:
    """Start ``slml deploy`` of a new version; SIGINT it once its new server runs."""
    slow_version(project, "2")
    deploy = project.popen("deploy")
    try:
        started = wait_for(lambda: len(project.servers()) >= 2, timeout=240, interval=0.05)
        assert started, f"the new server never started: {deploy.poll()}"
        deploy.send_signal(signal.SIGINT)
        out, err = deploy.communicate(timeout=120)
    finally:
        if deploy.poll() is None:
            os.killpg(deploy.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(deploy.args, deploy.returncode, out, err)


def test_sigint_midway_keeps_previous_deployment(project: Project) -> None:
    first = project.deploy()
    _interrupt_deploy(project)
    record = project.record()
    assert record is not None and record["version"] == first["version"], record
    assert record["pid"] == first["outputs"]["pid"]
    code, body = predict(first["url"])
    assert code == 200 and body["version"] == "1", body
    assert wait_for(lambda: project.servers() == [record["pid"]], timeout=30), project.servers()
    assert project.status()["state"] == "running"
    events = [e.get("event") for e in project.history()]
    assert events[-1] == "deploy-interrupted", events


def test_interrupted_deploy_exits_nonzero(project: Project) -> None:
    project.deploy()
    deploy = _interrupt_deploy(project)
    assert deploy.returncode == 130
    assert "interrupted" in deploy.stderr


def test_two_deploys_at_once_keep_state_consistent(project: Project) -> None:
    project.deploy()  # environments built: the two racers only start servers
    new_version(project, "2")
    racers = [project.popen("deploy", "--json") for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in racers]
    codes = [code for code, _out, _err in results]
    assert 0 in codes, results
    assert all(code in (0, 2) for code in codes), results  # waited, or refused clearly

    for path in (project.root / ".slml" / "deployments").glob("*/*.json"):
        json.loads(path.read_text())  # every record parses
    versions = [e["version"] for e in project.history() if e.get("event") == "deploy"]
    assert versions == sorted(set(versions)), project.history()
    record = project.record()
    assert record is not None and record["version"] == max(versions)

    assert wait_for(lambda: project.servers() == [record["pid"]], timeout=30), (
        project.servers(), record["pid"])  # fmt: skip
    code, body = predict(record["url"])
    assert code == 200 and body["version"] == "2"


def test_tampered_artifact_fails_deploy_and_old_version_keeps_serving(project: Project):
    first = project.deploy()
    model_file = project.model / "model" / "model.joblib"
    model_file.write_bytes(model_file.read_bytes() + b"tampered")
    failed = project.cli("deploy")
    assert failed.returncode == 2, failed.stderr
    assert "model/model.joblib" in failed.stderr and "Traceback" not in failed.stderr
    record = project.record()
    assert record is not None and record["version"] == first["version"]
    code, body = predict(first["url"])
    assert code == 200 and body["version"] == "1"
    assert project.servers() == [first["outputs"]["pid"]]
