"""The local provider end to end: real bundles, real server processes, real HTTP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from slml.config import LocalConfig, ProjectConfig
from slml.errors import DeployError, InvokeError, NotDeployed
from slml.providers import local_process as proc
from slml.providers.base import Bundle, NullReporter, Provider, ProviderContext
from slml.providers.local import LocalProvider
from slml.runtime.manifest import MANIFEST_FILE, hash_tree
from slml.state import ProjectState, RecordUnreadable
from tests.conftest import _train_iris, write_sklearn_artifact

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cache() -> Path:
    """Content-addressed (locks and envs keyed by hashes), so sharing it across test
    files and runs is safe and spares rebuilding the same environment."""
    return Path(tempfile.gettempdir()) / "slml-test-cache"


@pytest.fixture
def provider(cache: Path) -> LocalProvider:
    return LocalProvider(cache_dir=cache, stop_grace=5.0)


def _ctx(project: Path, artifact: Path, reporter=None, **local) -> ProviderContext:
    config = ProjectConfig(
        name="iris-demo", model=artifact, provider="local", local=LocalConfig(**local)
    )
    return ProviderContext(
        config=config, state=ProjectState(project), reporter=reporter or NullReporter()
    )


def _all_pids(state: ProjectState) -> set[int]:
    pids = {e["pid"] for e in state.history() if e.get("pid")}
    return pids | {r["pid"] for r in state.records() if r.get("pid")}


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A project directory; every server started in it is killed afterwards."""
    root = tmp_path / "project"
    root.mkdir()
    try:
        yield root
    finally:
        for pid in _all_pids(ProjectState(root)):
            if proc.is_our_server(pid):
                os.killpg(pid, signal.SIGKILL)


def _rewrite(artifact: Path, *, version: str, seed: int) -> None:
    shutil.rmtree(artifact)
    write_sklearn_artifact(artifact, _train_iris(seed=seed, max_iter=150 + seed), version=version)


def _break(artifact: Path) -> None:
    """A corrupted model file whose manifest hashes are correct: it fails at load."""
    (artifact / "model" / "model.joblib").write_bytes(b"not a joblib file")
    manifest = json.loads((artifact / MANIFEST_FILE).read_text())
    manifest["files"] = hash_tree(artifact)
    (artifact / MANIFEST_FILE).write_text(json.dumps(manifest))


def _served_version(url: str) -> str:
    return httpx.get(f"{url}/metadata", timeout=5).json()["version"]


def test_is_a_provider(provider: LocalProvider) -> None:
    assert isinstance(provider, Provider)
    assert provider.name == "local" and provider.config_model is LocalConfig


def test_full_lifecycle(provider, project, iris_artifact, iris_rows) -> None:
    ctx = _ctx(project, iris_artifact)
    assert provider.status(ctx=ctx).state == "not-deployed"
    bundle = provider.build(ctx=ctx)
    plan = provider.plan(ctx=ctx, bundle=bundle)
    assert plan.kind == "local" and "start a new server for version 1" in plan.steps[1]

    first = provider.deploy(ctx=ctx, bundle=bundle)
    assert first.version == 1 and first.url.startswith("http://127.0.0.1:")
    answer = provider.invoke(ctx=ctx, payload={"instances": iris_rows})
    assert len(answer["predictions"]) == 3 and answer["version"] == "1"
    status = provider.status(ctx=ctx)
    assert (status.state, status.version, status.url) == ("running", 1, first.url)

    _rewrite(iris_artifact, version="2", seed=1)
    second = provider.deploy(ctx=ctx, bundle=provider.build(ctx=ctx))
    assert second.version == 2 and second.url == first.url
    assert not proc.is_alive(first.outputs["pid"])
    assert _served_version(second.url) == "2"
    assert "stop version 2" in provider.plan(ctx=ctx, bundle=bundle).steps[-1]

    _break(iris_artifact)
    with pytest.raises(DeployError) as err:
        provider.deploy(ctx=ctx, bundle=provider.build(ctx=ctx))
    message = str(err.value)
    assert "version 3 did not start" in message and "version 2 is still serving" in message
    assert "cannot load the model" in message  # quoted from the server's log
    assert ctx.state.read_record("dev", "local")["version"] == 2
    assert _served_version(second.url) == "2"
    failed = ctx.state.history()[-1]  # the cause under "error", as the Pulumi providers write
    assert failed["event"] == "deploy-failed" and "the server" in failed["error"]
    assert "reason" not in failed and failed["schema_version"] == 2
    assert provider.versions(ctx=ctx) == [1, 2]

    os.killpg(second.outputs["pid"], signal.SIGKILL)
    _wait(lambda: not proc.is_alive(second.outputs["pid"]))
    down = provider.status(ctx=ctx)
    assert down.state == "down" and "not running" in down.details["reason"]
    with pytest.raises(InvokeError, match="cannot reach version 2"):
        provider.invoke(ctx=ctx, payload={"instances": iris_rows})

    _rewrite(iris_artifact, version="4", seed=2)
    back = provider.deploy(ctx=ctx, bundle=provider.build(ctx=ctx))
    assert back.version == 4 and back.url == first.url
    assert provider.status(ctx=ctx).state == "running"

    provider.destroy(ctx=ctx)
    assert provider.status(ctx=ctx).state == "not-deployed"
    assert not proc.is_alive(back.outputs["pid"])
    assert provider.versions(ctx=ctx) == []
    provider.destroy(ctx=ctx)  # idempotent
    with pytest.raises(NotDeployed):
        provider.invoke(ctx=ctx, payload={"instances": iris_rows})
    events = [e["event"] for e in ctx.state.history()]
    assert events == ["deploy", "deploy", "deploy-failed", "deploy", "destroy"]


def _wait(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.fixture
def deployed(provider, project, iris_artifact) -> tuple[ProviderContext, Bundle]:
    ctx = _ctx(project, iris_artifact)
    bundle = provider.build(ctx=ctx)
    provider.deploy(ctx=ctx, bundle=bundle)
    return ctx, bundle


class _InterruptOnStart(NullReporter):
    def detail(self, message: str) -> None:
        super().detail(message)
        if message.startswith("pid "):  # the new server was just spawned
            self.new_pid = int(message.split()[1].rstrip(","))
            raise KeyboardInterrupt


def test_interrupted_deploy_leaves_the_old_version(provider, deployed) -> None:
    ctx, bundle = deployed
    before = ctx.state.read_record("dev", "local")
    reporter = _InterruptOnStart()
    with pytest.raises(KeyboardInterrupt):
        provider.deploy(ctx=_ctx(ctx.project_dir, ctx.config.model, reporter), bundle=bundle)
    assert ctx.state.read_record("dev", "local") == before
    assert not proc.is_alive(reporter.new_pid)
    assert provider.status(ctx=ctx).state == "running"
    assert ctx.state.history()[-1]["event"] == "deploy-interrupted"
    assert provider.versions(ctx=ctx) == [1]


def test_concurrent_deploys_run_one_after_the_other(provider, deployed) -> None:
    ctx, bundle = deployed
    results, errors = [], []

    def deploy() -> None:
        try:
            results.append(provider.deploy(ctx=ctx, bundle=bundle))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=deploy) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(r.version for r in results) == [2, 3]
    record = ctx.state.read_record("dev", "local")
    assert record["version"] == 3 and proc.is_our_server(record["pid"])
    alive = [pid for pid in _all_pids(ctx.state) if proc.is_our_server(pid)]
    assert alive == [record["pid"]]
    assert [e["version"] for e in ctx.state.history()] == [1, 2, 3]


def test_rollback_redeploys_the_previous_bundle(provider, deployed, iris_artifact) -> None:
    ctx, _ = deployed
    _rewrite(iris_artifact, version="2", seed=1)
    provider.deploy(ctx=ctx, bundle=provider.build(ctx=ctx))
    result = provider.rollback(ctx=ctx)
    assert result.version == 3 and _served_version(result.url) == "1"
    with pytest.raises(DeployError, match="no local deployment of version 9"):
        provider.rollback(ctx=ctx, version=9)


def test_invoke_returns_the_servers_error(provider, deployed) -> None:
    ctx, _ = deployed
    with pytest.raises(InvokeError, match=r"answered 4\d\d invalid_input") as err:
        provider.invoke(ctx=ctx, payload={"instances": [[1.0, 2.0]]})
    assert "4" in str(err.value)


def test_logs_tail_and_follow(provider, deployed, iris_rows) -> None:
    ctx, _ = deployed
    tail = list(provider.logs(ctx=ctx, lines=50))
    assert any('"event": "ready"' in line for line in tail)
    stream = provider.logs(ctx=ctx, lines=1, follow=True)
    assert len([next(stream)]) == 1
    provider.invoke(ctx=ctx, payload={"instances": iris_rows})
    new_line = next(stream)
    assert "/predict" in new_line or "request" in new_line


def test_logs_and_destroy_when_nothing_was_deployed(provider, project, iris_artifact) -> None:
    ctx = _ctx(project, iris_artifact)
    with pytest.raises(NotDeployed, match="iris-demo is not deployed locally"):
        provider.logs(ctx=ctx)
    provider.destroy(ctx=ctx)
    assert ctx.reporter.events[-1][1].endswith("nothing to destroy")


def test_port_taken_by_another_program_fails_cleanly(provider, project, iris_artifact) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        ctx = _ctx(project, iris_artifact, port=port)
        with pytest.raises(DeployError, match=f"version 1 did not start on port {port}"):
            provider.deploy(ctx=ctx, bundle=provider.build(ctx=ctx))
    assert ctx.state.read_record("dev", "local") is None
    assert provider.status(ctx=ctx).state == "not-deployed"


def _record_path(ctx: ProviderContext) -> Path:
    return ctx.state.record_path(ctx.stage, "local")


def test_a_server_the_record_no_longer_names_stops_by_itself(provider, deployed) -> None:
    ctx, _ = deployed
    record = ctx.state.read_record("dev", "local")
    assert proc.find_servers(proc.stage_marker(ctx.project_dir, "dev")) == [record["pid"]]
    ctx.state.write_record("dev", "local", {**record, "pid": record["pid"] + 100000,
                                          "pids": [record["pid"] + 100000]})
    _wait(lambda: not proc.is_alive(record["pid"]), timeout=30)  # what a killed deploy leaves


def test_a_wrong_shaped_record_is_never_deleted_before_its_server_stops(
    provider, deployed
) -> None:
    ctx, _ = deployed
    record = ctx.state.read_record("dev", "local")
    _record_path(ctx).write_text(json.dumps({**record, "pid": str(record["pid"])}))
    assert provider.status(ctx=ctx).state == "unknown"
    assert provider.status(ctx=ctx).details["servers"] == [record["pid"]]
    with pytest.raises(RecordUnreadable, match="'pid' is missing or not a int") as err:
        provider.destroy(ctx=ctx)
    assert "destroy --force" in str(err.value)
    time.sleep(1.5)  # the server does not take an unreadable record for "not me"
    assert proc.is_our_server(record["pid"]) and _record_path(ctx).exists()
    assert provider.versions(ctx=ctx) == [1]
    with pytest.raises(RecordUnreadable):
        provider.deploy(ctx=ctx, bundle=provider.build(ctx=ctx))

    provider.destroy(ctx=ctx, force=True)
    assert not proc.is_alive(record["pid"]) and not _record_path(ctx).exists()
    assert provider.versions(ctx=ctx) == []
    assert ctx.state.history()[-1]["forced"] is True
    assert provider.status(ctx=ctx).state == "not-deployed"


def test_next_deploy_stops_a_stray_server_of_the_stage(provider, deployed) -> None:
    ctx, bundle = deployed
    record = ctx.state.read_record("dev", "local")
    vdir = Path(record["bundle"])
    log = vdir.parent / "stray.log"
    stray = proc.spawn(  # as a deploy killed after spawning would leave it, unrecorded
        proc.server_command(Path(record["env"]), vdir, host="127.0.0.1", port=record["port"]),
        cwd=vdir, env=proc.server_env(vdir, {}), log_path=log,
        marker=proc.stage_marker(ctx.project_dir, "dev"),
    )  # fmt: skip
    try:
        proc.wait_healthy(stray, log_path=log, offset=0, host="127.0.0.1", timeout=90)
        assert provider.status(ctx=ctx).details["unrecorded_servers"] == [stray]
        result = provider.deploy(ctx=ctx, bundle=bundle)
        assert not proc.is_alive(stray)
        assert any("stopped its unrecorded server" in n for n in result.notes), result.notes
        assert ctx.state.history()[-2]["event"] == "deploy-killed"
    finally:
        proc.stop_server(stray, stray, grace=1.0)


def test_listening_beyond_loopback_is_warned_about(provider, deployed) -> None:
    ctx, bundle = deployed
    wide = _ctx(ctx.project_dir, ctx.config.model, host="0.0.0.0")
    (warning,) = provider.plan(ctx=wide, bundle=bundle).warnings
    assert "accept connections from other machines" in warning
    assert provider.plan(ctx=ctx, bundle=bundle).warnings == ()


def test_server_logs_rotate_and_logs_follows_across(project, iris_artifact, iris_rows, cache):
    provider = LocalProvider(cache_dir=cache, stop_grace=5.0, log_max_bytes=4096, log_keep=2)
    ctx = _ctx(project, iris_artifact)
    provider.deploy(ctx=ctx, bundle=provider.build(ctx=ctx))
    stream = provider.logs(ctx=ctx, lines=1, follow=True)
    next(stream)
    for _ in range(60):  # one JSON line (~250 bytes) each: several rotations
        provider.invoke(ctx=ctx, payload={"instances": iris_rows})
    followed = [next(stream) for _ in range(60)]
    assert sum('"/predict"' in line for line in followed) == 60
    log = Path(ctx.state.read_record("dev", "local")["log"])
    parts = sorted(log.parent.glob(log.name + "*"))
    assert [p.name for p in parts] == [log.name, log.name + ".1", log.name + ".2"]
    assert all(p.stat().st_size <= 4096 for p in parts)
    assert any('"/predict"' in line for line in provider.logs(ctx=ctx, lines=5))
    provider.destroy(ctx=ctx)


_BEFORE_STANDBY = "f5dd48b"


def test_a_bundle_built_before_standby_still_deploys(provider, project, iris_artifact) -> None:
    ctx = _ctx(project, iris_artifact)
    bundle = provider.build(ctx=ctx)
    runtime = bundle.path / "app" / "slml" / "runtime"
    old_serve = subprocess.run(  # the runtime of slml before standby servers
        ["git", "show", f"{_BEFORE_STANDBY}:slml/runtime/serve.py"], capture_output=True,
        text=True, cwd=Path(__file__).parent,
    )  # fmt: skip
    if old_serve.returncode != 0:
        pytest.skip("the git history of slml is not available here")
    (runtime / "serve.py").write_text(old_serve.stdout)
    for module in ("control.py", "logfile.py"):
        (runtime / module).unlink()
    result = provider.deploy(ctx=ctx, bundle=bundle)
    assert _served_version(result.url) == "1" and provider.status(ctx=ctx).state == "running"
    provider.destroy(ctx=ctx)
    assert not proc.is_alive(result.outputs["pid"])
