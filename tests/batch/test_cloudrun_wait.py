"""Following a Cloud Run Job execution through the Admin API v2 (httpx.MockTransport)."""

from __future__ import annotations

import httpx
import pytest

from slml.batch import BatchError
from slml.batch.cloudrun_wait import RUN_API, ExecutionWatcher

JOB = f"{RUN_API}/projects/p-123456/locations/europe-west1/jobs/iris-dev-batch"
EXEC = "projects/p-123456/locations/europe-west1/jobs/iris-dev-batch/executions/iris-x1"


def execution(succeeded: int, running: int, *, state: str | None = None,
              failed: int = 0) -> dict:
    data = {"name": EXEC, "taskCount": 4, "succeededCount": succeeded,
            "runningCount": running, "failedCount": failed,
            "logUri": "https://console.cloud.google.com/logs/x"}
    if state:
        data["completionTime"] = "2026-12-01T23:10:00Z"
        data["conditions"] = [{"type": "Ready", "state": state},
                              {"type": "Completed", "state": state,
                               "message": "Task iris-x1-2 failed with exit code 2"
                               if state == "CONDITION_FAILED" else ""}]
    return data


def watcher(*answers: dict, status: int = 200) -> tuple[ExecutionWatcher, list[str]]:
    queue = list(answers)
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer ya29.t"
        seen.append(str(request.url))
        if str(request.url) == JOB:
            return httpx.Response(status, json={"latestCreatedExecution": {"name": EXEC}}
                                  if status == 200 else {"error": {"message": "denied"}})
        return httpx.Response(200, json=queue.pop(0))

    w = ExecutionWatcher(project="p-123456", region="europe-west1", job="iris-dev-batch",
                         token_getter=lambda: "ya29.t", transport=httpx.MockTransport(handler),
                         poll_seconds=0, sleep=lambda s: None)
    return w, seen


def test_follows_the_latest_execution_to_success_reporting_each_change() -> None:
    w, seen = watcher(execution(0, 4), execution(0, 4), execution(3, 1),
                      execution(4, 0, state="CONDITION_SUCCEEDED"))
    lines: list[str] = []
    state = w.wait(w.latest(), on_status=lines.append)
    assert state.ok and state.succeeded == 4
    assert lines == ["iris-x1: 0/4 task(s) done, 4 running, 0 failed",
                     "iris-x1: 3/4 task(s) done, 1 running, 0 failed",
                     "iris-x1: 4/4 task(s) done, 0 running, 0 failed"]
    assert seen[1] == f"{RUN_API}/{EXEC}"


def test_a_failed_execution_is_an_error_with_its_message_and_log() -> None:
    w, _ = watcher(execution(3, 0, failed=1, state="CONDITION_FAILED"))
    with pytest.raises(BatchError, match="exit code 2") as info:
        w.wait(EXEC, on_status=lambda line: None)
    assert "console.cloud.google.com/logs" in (info.value.hint or "")


def test_an_api_refusal_names_the_role() -> None:
    w, _ = watcher(status=403)
    with pytest.raises(BatchError, match="answered 403: denied") as info:
        w.latest()
    assert "roles/run.viewer" in (info.value.hint or "")
