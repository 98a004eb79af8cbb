"""Load: 32+ concurrent keep-alive clients (a separate process) against a real server
for a bounded run; zero failed requests and stable memory."""

from __future__ import annotations

import pytest

from benchmarks.procs import Server, memory_kb
from tests.reliability.deployments import Project
from tests.reliability.loadrun import run_load

CONCURRENCY = 32
HALF = 1000  # requests per half; each half is also capped at 10 s
MAX_GROWTH_KB = 20 * 1024


def _load_and_check(url: str, pid: int) -> None:
    url = url + "/predict"
    warm = run_load(url, concurrency=CONCURRENCY, requests=300, duration=10)
    assert warm["failures"] == 0, warm
    rss_before = memory_kb(pid)
    first = run_load(url, concurrency=CONCURRENCY, requests=HALF, duration=10)
    rss_middle = memory_kb(pid)
    second = run_load(url, concurrency=CONCURRENCY, requests=HALF, duration=10)
    rss_after = memory_kb(pid)
    for half in (first, second):
        assert half["failures"] == 0, half
        assert half["count"] > 0 and set(half["statuses"]) == {"200"}, half
    assert None not in (rss_before, rss_middle, rss_after), "the server died under load"
    growth = rss_after - rss_middle  # type: ignore[operator]
    assert growth < MAX_GROWTH_KB, (
        f"RSS grew {growth} kB during the second half "
        f"({rss_before} → {rss_middle} → {rss_after} kB)"
    )


@pytest.mark.slow
def test_runtime_server_under_load(iris_server: Server) -> None:
    _load_and_check(iris_server.url, iris_server.pid)
    assert iris_server.proc.poll() is None


@pytest.mark.slow
@pytest.mark.e2e
def test_local_deployment_under_load(project: Project) -> None:
    """The real bundle in its own environment, deployed with ``slml deploy``."""
    deployed = project.deploy()
    _load_and_check(deployed["url"], int(deployed["outputs"]["pid"]))
    assert project.status()["state"] == "running"
