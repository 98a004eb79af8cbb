"""Follow a Cloud Run Job execution to its end, over the Cloud Run Admin API v2 (httpx).

``GET https://run.googleapis.com/v2/projects/P/locations/R/jobs/J`` names the latest
execution (``latestCreatedExecution.name``); ``GET https://run.googleapis.com/v2/<name>``
gives its task counts (``taskCount``, ``runningCount``, ``succeededCount``,
``failedCount``, ``cancelledCount``), ``completionTime`` and ``conditions`` (the
``Completed`` condition is ``CONDITION_SUCCEEDED`` or ``CONDITION_FAILED`` with a
message) and ``logUri``. The token getter and the transport are injected: the tests
answer with ``httpx.MockTransport``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from slml.batch import BatchError

RUN_API = "https://run.googleapis.com/v2"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
POLL_SECONDS = 15.0


@dataclass(frozen=True)
class ExecutionState:
    name: str
    tasks: int
    running: int
    succeeded: int
    failed: int
    cancelled: int
    done: bool
    ok: bool
    message: str = ""
    log_uri: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExecutionState:
        completed: dict[str, Any] = next((c for c in data.get("conditions") or []
                          if c.get("type") == "Completed"), {})  # fmt: skip
        state = completed.get("state", "")
        done = bool(data.get("completionTime")) or state in ("CONDITION_SUCCEEDED",
                                                              "CONDITION_FAILED")
        return cls(
            name=data.get("name", ""), tasks=int(data.get("taskCount", 0)),
            running=int(data.get("runningCount", 0)),
            succeeded=int(data.get("succeededCount", 0)),
            failed=int(data.get("failedCount", 0)),
            cancelled=int(data.get("cancelledCount", 0)), done=done,
            ok=done and state == "CONDITION_SUCCEEDED", message=completed.get("message", ""),
            log_uri=data.get("logUri", ""),
        )  # fmt: skip

    def line(self) -> str:
        return (f"{self.succeeded}/{self.tasks} task(s) done, {self.running} running, "
                f"{self.failed} failed")


class ExecutionWatcher:
    """Polls one job's latest execution. ``token_getter`` returns a bearer token."""

    def __init__(self, *, project: str, region: str, job: str,
                 token_getter: Callable[[], str] | None = None,
                 transport: httpx.BaseTransport | None = None,
                 poll_seconds: float = POLL_SECONDS,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if token_getter is None:
            from slml.providers.gcp_ops import default_token_getter

            token_getter = default_token_getter(CLOUD_PLATFORM_SCOPE,
                                                purpose="follow the Cloud Run Job",
                                                role="roles/run.viewer")
        self.job_url = f"{RUN_API}/projects/{project}/locations/{region}/jobs/{job}"
        self.job = job
        self.token = token_getter
        self.client = httpx.Client(transport=transport, timeout=30.0)
        self.poll_seconds = poll_seconds
        self.sleep = sleep

    def latest(self) -> str:
        """The name of the job's latest execution."""
        ref = self._get(self.job_url).get("latestCreatedExecution") or {}
        if not ref.get("name"):
            raise BatchError(f"Cloud Run Job {self.job} has no execution to follow",
                             hint="start one with `slml batch ... --provider gcp`")
        return str(ref["name"])

    def wait(self, name: str, on_status: Callable[[str], None]) -> ExecutionState:
        """Poll until the execution ends; report each change of its task counts.
        Raises BatchError when it failed, naming the failed tasks and the log."""
        last = ""
        while True:
            state = ExecutionState.from_json(self._get(f"{RUN_API}/{name}"))
            if state.line() != last:
                on_status(f"{name.rsplit('/', 1)[-1]}: {state.line()}")
                last = state.line()
            if state.done:
                break
            self.sleep(self.poll_seconds)
        if not state.ok:
            raise BatchError(
                f"execution {name.rsplit('/', 1)[-1]} failed: {state.message or state.line()}",
                hint=f"the tasks' logs: {state.log_uri}" if state.log_uri else
                "`gcloud run jobs executions describe` shows the failed tasks",
            )
        return state

    def _get(self, url: str) -> dict[str, Any]:
        try:
            response = self.client.get(url, headers={"authorization": f"Bearer {self.token()}"})
        except httpx.HTTPError as exc:
            raise BatchError(f"cannot reach the Cloud Run API: {exc}",
                             hint="check the network and `gcloud auth "
                                  "application-default login`") from None
        if response.status_code != 200:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise BatchError(f"the Cloud Run API answered {response.status_code}: {message}",
                             hint="following a job needs roles/run.viewer on the project")
        answer: dict[str, Any] = response.json()
        return answer
