"""Run a Lambda function in a container as Lambda runs it, under AWS's own Runtime
Interface Client (awslambdaric) and a Runtime API server in the test (runtime_api.py).

Zip functions: the function zip is unpacked at ``/var/task`` and the layer zip at
``/opt`` (both read-only), on the stand-in ``public.ecr.aws/lambda/python`` image whose
``/var/runtime`` holds the client. Container-image functions run their own image's
ENTRYPOINT and CMD. Either way: a read-only root file system except ``/tmp``, a
non-root user (uid 993, as Lambda's sandbox user), the configured memory as the
container's limit, and Lambda's environment variables
(docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html). ``PYTHONPATH`` lists
what the managed runtime puts on ``sys.path`` for a zip function: the task root, the
layer's ``python/lib/pythonX.Y/site-packages`` and ``python/``, then ``/var/runtime``.

``init_seconds`` is Lambda's "Init Duration": from the runtime process starting (the
container's StartedAt) to its first request for an event.
"""

from __future__ import annotations

import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from containers.engine import Engine
from containers.runtime_api import Result, RuntimeApi

LAMBDA_UID = "993:990"
LD_LIBRARY_PATH = (
    "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:"
    "/opt/lib"
)


def lambda_env(*, runtime: str, memory: int, api: str, zip_handler: str | None) -> dict[str, str]:
    """Lambda's variables; ``_HANDLER`` and ``PYTHONPATH`` only for zip functions (an
    image's entrypoint sets its own)."""
    env = {
        "AWS_LAMBDA_RUNTIME_API": api,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": "slml-test",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/slml-test",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/12/01/[$LATEST]0123456789abcdef",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "ASIAEXAMPLEEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "example",
        "AWS_SESSION_TOKEN": "example",
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "LD_LIBRARY_PATH": LD_LIBRARY_PATH,
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
    }
    if zip_handler is not None:
        minor = runtime.removeprefix("python")
        env["_HANDLER"] = zip_handler
        env["PYTHONPATH"] = (
            f"/var/task:/opt/python/lib/python{minor}/site-packages:/opt/python:/var/runtime"
        )
    return env


def unpack(zip_path: Path, dest: Path) -> Path:
    """Unzip as Lambda does (files world-readable, owned by someone else)."""
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(dest)
    return dest


@dataclass
class LambdaRun:
    engine: Engine
    api: RuntimeApi
    name: str
    init_seconds: float

    def invoke(self, event: dict, *, timeout: float = 120) -> Result:
        return self.api.invoke(event, timeout=timeout)

    def logs(self) -> str:
        return self.engine.logs(self.name)


def _started_at(engine: Engine, name: str) -> float:
    """The container's StartedAt as epoch seconds (nanoseconds cut to microseconds)."""
    info = engine.inspect(name) or {}
    stamp = info.get("State", {}).get("StartedAt", "")
    head, _, frac = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00").timestamp()


@contextmanager
def run_lambda(
    engine: Engine, *, image: str, runtime: str, memory: int, task: Path | None = None,
    opt: Path | None = None, handler: str | None = None, wait: bool = True,
    ready_timeout: float = 600,
) -> Iterator[LambdaRun]:  # fmt: skip
    """Start the function and wait for its init to finish (unless ``wait`` is False);
    removes the container afterwards. Zip functions pass ``task``, ``opt``, ``handler``.
    No ``--platform``: arm64 stand-ins are labelled amd64 (see images/build.py) and run
    through binfmt's qemu-aarch64 as they are."""
    api = RuntimeApi().start()
    name = f"slml-lambda-{uuid.uuid4().hex[:10]}"
    options = ["--read-only", "--tmpfs", "/tmp:rw,size=512m,mode=1777", "--user", LAMBDA_UID,
               "--memory", f"{memory}m", "--memory-swap", f"{memory}m"]  # fmt: skip
    for host, mount in ((task, "/var/task"), (opt, "/opt")):
        if host is not None:
            options += ["--volume", f"{host}:{mount}:ro"]
    env = lambda_env(runtime=runtime, memory=memory, api=api.address, zip_handler=handler)
    for key, value in env.items():
        options += ["--env", f"{key}={value}"]
    try:
        engine.start(name=name, image=image, options=options, command=[handler] if handler else [])
        init = -1.0
        if wait:
            api.wait_ready(timeout=ready_timeout)
            ready_wall = time.time() - (time.monotonic() - (api.first_next_at or 0))
            init = ready_wall - _started_at(engine, name)
        yield LambdaRun(engine, api, name, init)
    finally:
        engine.remove(name)
        api.close()
