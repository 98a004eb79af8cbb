"""Local rollouts end to end: real servers, the real router, real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from slml import api
from slml.config.sections import GuardConfig
from slml.errors import DeployError, IntegrityError, NotDeployed
from slml.providers import local_process as proc
from slml.state import ProjectState
from tests.conftest import _train_iris, write_sklearn_artifact

pytestmark = pytest.mark.e2e
ROW = {"instances": [[5.1, 3.5, 1.4, 0.2]]}


@pytest.fixture
def project(tmp_path: Path, iris_artifact: Path) -> Iterator[Path]:
    """A project with slml.yaml; every server and router it started is killed after."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(iris_artifact, root / "iris")
    (root / "slml.yaml").write_text(yaml.safe_dump({
        "name": "iris-demo", "model": "iris", "provider": "local",
        "rollout": {"sticky_header": "X-User"},
    }))  # fmt: skip
    os.environ.setdefault("SLML_CACHE_DIR", str(Path(tempfile.gettempdir()) / "slml-test-cache"))
    try:
        yield root
    finally:
        for stage in ("dev", "prod"):
            for pid in proc.find_servers(proc.stage_marker(root.resolve(), stage)):
                os.killpg(pid, signal.SIGKILL)


def _new_model(project: Path, version: str, seed: int) -> None:
    shutil.rmtree(project / "iris")
    write_sklearn_artifact(project / "iris", _train_iris(seed=seed, max_iter=150 + seed),
                           version=version)  # fmt: skip


def _versions(url: str, n: int, headers: dict[str, str] | None = None) -> Counter[str]:
    with httpx.Client(timeout=30) as client:
        return Counter(client.post(f"{url}/predict", json=ROW, headers=headers).json()["version"]
                       for _ in range(n))  # fmt: skip


def test_canary_split_promote_and_rollback(project: Path) -> None:
    first = api.deploy(project)
    _new_model(project, "2", seed=1)
    canary = api.deploy(project, canary=10)
    assert canary.url == first.url  # the one stable port
    assert [(t.version, t.percent, t.role) for t in canary.traffic] == [
        (1, 90.0, "primary"), (2, 10.0, "canary")]
    seen = _versions(canary.url, 2000)
    assert set(seen) == {"1", "2"}
    assert 7.0 <= 100 * seen["2"] / 2000 <= 13.0, seen
    # a sticky key always lands on the same version
    assert len(_versions(canary.url, 30, {"X-User": "alice"})) == 1
    status = api.status(project)
    assert status.state == "running"
    assert [t.to_json()["role"] for t in status.traffic] == ["primary", "canary"]
    counted = status.details["metrics"]["versions"]
    assert counted["2"]["requests"] + counted["1"]["requests"] >= 2000

    promoted = api.promote(project)
    assert [(t.version, t.percent, t.role) for t in promoted.traffic] == [(2, 100.0, "primary")]
    assert _versions(promoted.url, 50) == Counter({"2": 50})
    assert not proc.is_our_server(first.outputs["pid"])  # the old primary is retired

    _new_model(project, "3", seed=2)
    api.deploy(project, canary=20)
    dropped = api.rollback(project)  # with a canary live: just drop it
    assert [(t.version, t.role) for t in dropped.traffic] == [(2, "primary")]
    assert _versions(dropped.url, 30) == Counter({"2": 30})
    events = [e["event"] for e in api.history(project)]
    assert events[-5:] == ["deploy", "canary", "promote", "canary", "rollback"][-5:]
    record = json.loads((project / ".slml/deployments/dev/local.json").read_text())
    assert record["schema_version"] == 2 and record["traffic"][0]["version"] == 2


def test_shadow_answers_are_captured_never_returned(project: Path) -> None:
    api.deploy(project)
    _new_model(project, "2", seed=1)
    result = api.deploy(project, shadow=True)
    assert [(t.version, t.role) for t in result.traffic] == [(1, "primary"), (2, "shadow")]
    assert _versions(result.url, 40) == Counter({"1": 40})  # clients see only the primary
    api.destroy(project)  # the router waits for shadow calls in flight before it exits
    lines = (project / ".slml/local/dev/shadow-v2.jsonl").read_text().splitlines()
    captured = [json.loads(line) for line in lines]
    assert len(captured) == 40
    assert {c["response"]["version"] for c in captured} == {"2"}
    assert captured[0]["request"] == ROW and captured[0]["status"] == 200


def test_canary_needs_a_live_version(project: Path) -> None:
    with pytest.raises(DeployError, match="--canary needs a version serving stage dev"):
        api.deploy(project, canary=10)


def test_promote_between_stages_serves_the_same_digest(project: Path) -> None:
    dev = api.deploy(project)
    _new_model(project, "2", seed=1)  # what the project holds now is not what dev serves
    prod = api.promote(project, from_stage="dev", to_stage="prod")
    assert prod.stage == "prod" and prod.url != dev.url
    assert _versions(prod.url, 5) == Counter({"1": 5})
    state = ProjectState(project)
    assert (state.read_record("prod", "local")["model_sha256"]
            == state.read_record("dev", "local")["model_sha256"])  # fmt: skip
    with pytest.raises(NotDeployed, match="stage qa serves nothing"):
        api.promote(project, from_stage="qa", to_stage="prod")
    record = state.read_record("dev", "local")
    state.write_record("dev", "local", {**record, "versions": {"1": {
        **record["versions"]["1"], "model_sha256": "0" * 64}}})  # not what the bundle holds
    with pytest.raises(IntegrityError, match="is not the one serving dev"):
        api.promote(project, from_stage="dev", to_stage="prod")


FLAKY_SOURCE = '''
class Flaky:
    """Fails every request whose first value is a multiple of 5 (20% of 0..4 cycling)."""

    def predict(self, inputs):
        out = []
        for row in inputs:
            if int(row[0]) % 5 == 0:
                raise RuntimeError("flaky model: refuses multiples of 5")
            out.append(float(sum(row)))
        return out
'''


def _flaky_artifact(tmp_path: Path, dest: Path) -> None:
    import importlib
    import sys
    import uuid

    from slml.artifact import save_model

    name = f"flaky_{uuid.uuid4().hex[:8]}"
    src = tmp_path / "src"
    src.mkdir()
    (src / f"{name}.py").write_text(FLAKY_SOURCE)
    sys.path.insert(0, str(src))
    try:
        model = importlib.import_module(name).Flaky()
        shutil.rmtree(dest)
        save_model(model, dest, sample_input=[[1.0, 2.0, 3.0, 4.0]], version="flaky")
    finally:
        sys.path.remove(str(src))
        sys.modules.pop(name, None)


def _load(url: str, stop: threading.Event) -> None:
    """Requests whose first value cycles 0..4 until ``stop``."""
    i = 0
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            client.post(f"{url}/predict", json={"instances": [[float(i % 5), 1.0, 1.0, 1.0]]})
            i += 1


def _guarded(project: Path, **options: object) -> api.Judgement:
    url = api.status(project).url
    stop = threading.Event()
    loader = threading.Thread(target=_load, args=(url, stop), daemon=True)
    loader.start()
    try:
        return api.guard(project, **options)  # type: ignore[arg-type]
    finally:
        stop.set()
        loader.join(timeout=30)


def test_guard_rolls_back_a_failing_canary(project: Path, tmp_path: Path) -> None:
    api.deploy(project)
    _flaky_artifact(tmp_path, project / "iris")
    api.deploy(project, canary=50)
    limits = GuardConfig(max_error_rate=0.05, window=30, min_requests=20)
    verdict = _guarded(project, thresholds=limits)
    assert verdict.outcome == "breached" and "error rate" in verdict.reason
    assert 0.1 <= verdict.metrics.error_rate <= 0.3, verdict.metrics
    status = api.status(project)
    assert [(t.version, t.role) for t in status.traffic] == [(1, "primary")]
    last = api.history(project)[-1]
    assert last["event"] == "guard-rollback" and "error rate" in last["error"]
    assert last["figures"]["requests"] >= 20 and last["figures"]["errors_by_code"]["500"] > 0


def test_guard_holds_a_good_canary_and_promotes_it(project: Path) -> None:
    api.deploy(project)
    _new_model(project, "2", seed=1)
    api.deploy(project, canary=50)
    limits = GuardConfig(max_error_rate=0.05, window=4, min_requests=5)
    verdict = _guarded(project, thresholds=limits, auto_promote=True)
    assert verdict.outcome == "held", verdict
    assert [(t.version, t.role) for t in api.status(project).traffic] == [(2, "primary")]
    assert [e["event"] for e in api.history(project)][-2:] == ["guard-held", "promote"]


@pytest.mark.parametrize("kill_when", [2, 4])  # new server up; router up too
def test_a_killed_canary_deploy_leaves_only_the_recorded_servers(project: Path,
                                                                 kill_when: int) -> None:
    import subprocess
    import sys
    import time

    first = api.deploy(project)
    _new_model(project, "2", seed=1)
    marker = proc.stage_marker(project.resolve(), "dev")
    slml = str(Path(sys.executable).with_name("slml"))
    deploy = subprocess.Popen([slml, "deploy", "--canary", "10"], cwd=project,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while len(proc.find_servers(marker)) < kill_when and deploy.poll() is None:
        assert time.monotonic() < deadline, "the canary deploy never started its processes"
        time.sleep(0.02)
    deploy.kill()
    deploy.wait()
    record = json.loads((project / ".slml/deployments/dev/local.json").read_text())
    kept = set(record["pids"])
    deadline = time.monotonic() + 30
    while set(proc.find_servers(marker)) != kept:
        assert time.monotonic() < deadline, (proc.find_servers(marker), kept)
        time.sleep(0.1)
    seen = _versions(first.url, 10)  # the stable port answers whichever record is there
    assert seen == Counter({"1": 10}) if len(record["traffic"]) == 1 else set(seen) <= {"1", "2"}
