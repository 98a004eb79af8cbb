"""DockerProvider: build the Cloud Run context with slml, then ``docker build`` and
``docker run --network host`` it. Every Docker call goes through an injectable
runner, every HTTP call through an injectable httpx transport."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx

from slml.errors import DeployError, NotDeployed, ProviderUnavailable
from slml.pipeline import Bundle, DeployResult, Plan, ProviderContext, Status
from slml.providers import http_answer
from slml.providers.base import ProviderBase
from slml.providers.container_ops import build as build_context
from slml_provider_docker.config import DockerConfig

Runner = Callable[..., subprocess.CompletedProcess[str]]
HOST = "127.0.0.1"


class DockerProvider(ProviderBase):
    """Runs one container per stage, named ``slml-<project>-<stage>``."""

    name: ClassVar[str] = "docker"
    config_model: ClassVar[type[DockerConfig]] = DockerConfig

    def __init__(
        self, *, runner: Runner = subprocess.run, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._run = runner
        self._transport = transport

    # -- helpers ---------------------------------------------------------------------
    def section(self, ctx: ProviderContext) -> DockerConfig:
        section = ctx.config.section(self.name)
        assert isinstance(section, DockerConfig)
        return section

    def container(self, ctx: ProviderContext) -> str:
        return f"slml-{ctx.name}-{ctx.stage}"

    def image(self, ctx: ProviderContext, bundle: Bundle) -> str:
        return f"slml-{ctx.name}:{bundle.model_sha256[:12]}-{bundle.lock_hash[:12]}"

    def _record_path(self, ctx: ProviderContext) -> Path:
        return ctx.state.stage_dir(self.name, ctx.stage) / "container.json"

    def _record(self, ctx: ProviderContext) -> dict[str, Any] | None:
        path = self._record_path(ctx)
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def _docker(
        self, ctx: ProviderContext, *args: str, check: bool = True,
        hint: str = "is the Docker engine running? `docker info` says",
    ) -> str:  # fmt: skip
        command = [self.section(ctx).cli, *args]
        try:
            done = self._run(command, capture_output=True, text=True, timeout=1800)
        except OSError as exc:
            raise ProviderUnavailable(
                f"cannot run {command[0]}: {exc}", hint="install Docker, or set docker.cli"
            ) from None
        if check and done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-5:])
            raise DeployError(
                f"`{' '.join(command[:3])} ...` failed ({done.returncode}): {tail}",
                hint=hint,
            )
        return done.stdout

    def _client(self, ctx: ProviderContext, timeout: float = 10) -> httpx.Client:
        base = f"http://{HOST}:{self.section(ctx).port}"
        return httpx.Client(base_url=base, transport=self._transport, timeout=timeout)

    # -- the protocol ----------------------------------------------------------------
    def build(self, *, ctx: ProviderContext) -> Bundle:
        """The Cloud Run build context, exactly as ``--provider gcp`` builds it."""
        cfg = self.section(ctx)
        return build_context(ctx, self.name, python_version=cfg.python_version, tarball=False)

    def plan(self, *, ctx: ProviderContext, bundle: Bundle) -> Plan:
        """The deploy in words; changes nothing."""
        cfg, name = self.section(ctx), self.container(ctx)
        steps = (
            f"docker build --network host -t {self.image(ctx, bundle)} {bundle.path}",
            f"docker rm -f {name} (the stage's previous container, if any)",
            f"docker run -d --name {name} --network host -e PORT={cfg.port} "
            f"-e SLML_HOST={HOST} {self.image(ctx, bundle)}",
            f"wait for GET http://{HOST}:{cfg.port}/healthz (up to {cfg.health_timeout:g} s)",
        )
        return Plan(provider=self.name, stage=ctx.stage, kind="local", steps=steps)

    def deploy(self, *, ctx: ProviderContext, bundle: Bundle) -> DeployResult:
        """Build the image, replace the stage's container, wait until it is healthy.
        Raises DeployError with the container's log when it never becomes healthy."""
        cfg, name, image = self.section(ctx), self.container(ctx), self.image(ctx, bundle)
        ctx.reporter.step(f"docker build -t {image}")
        build_args = [f"--build-arg={k}={v}" for k, v in cfg.build_args.items()]
        self._docker(ctx, "build", "--network", "host", *build_args, "-t", image,
                     str(bundle.path), hint=(
            "the build pulls its base image and installs the lock from the package index: "
            f"both must be reachable from the engine (retry `docker build {bundle.path}`)"
        ))  # fmt: skip
        self._docker(ctx, "rm", "-f", name, check=False)
        env = [f"--env={k}={v}" for k, v in {**cfg.env, "PORT": str(cfg.port)}.items()]
        ctx.reporter.step(f"docker run {name} on {HOST}:{cfg.port}")
        self._docker(ctx, "run", "-d", "--name", name, "--network", "host",
                     f"--env=SLML_HOST={HOST}", *env, image)  # fmt: skip
        self._wait_healthy(ctx, cfg)
        old = self._record(ctx) or {}
        version = int(old.get("version", 0)) + 1
        url = f"http://{HOST}:{cfg.port}"
        record = {"version": version, "image": image, "container": name, "url": url}
        path = self._record_path(ctx)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record), encoding="utf-8")
        return DeployResult(provider=self.name, stage=ctx.stage, url=url, version=version,
                            outputs=record)  # fmt: skip

    def _wait_healthy(self, ctx: ProviderContext, cfg: DockerConfig) -> None:
        deadline = time.monotonic() + cfg.health_timeout
        with self._client(ctx, timeout=2) as client:
            while time.monotonic() < deadline:
                try:
                    if client.get("/healthz").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
        logs = self._docker(ctx, "logs", "--tail", "15", self.container(ctx), check=False)
        raise DeployError(
            f"the container did not become healthy in {cfg.health_timeout:g} s:\n{logs}",
            hint=f"see `docker logs {self.container(ctx)}`",
        )

    def destroy(self, *, ctx: ProviderContext) -> None:
        """Remove the stage's container (idempotent)."""
        self._docker(ctx, "rm", "-f", self.container(ctx), check=False)
        self._record_path(ctx).unlink(missing_ok=True)

    def status(self, *, ctx: ProviderContext) -> Status:
        record = self._record(ctx)
        if record is None:
            return Status(provider=self.name, stage=ctx.stage, state="not-deployed")
        running = self._docker(
            ctx, "inspect", "-f", "{{.State.Running}}", self.container(ctx), check=False
        ).strip()
        return Status(provider=self.name, stage=ctx.stage,
                      state="running" if running == "true" else "down", url=record["url"],
                      version=record["version"], details={"image": record["image"]})  # fmt: skip

    def invoke(self, *, ctx: ProviderContext, payload: dict[str, Any]) -> dict[str, Any]:
        if self._record(ctx) is None:
            raise NotDeployed(f"stage {ctx.stage!r} has no docker deployment",
                              hint="slml deploy --provider docker")  # fmt: skip
        with self._client(ctx, timeout=60) as client:
            answer = http_answer.post(client, "/predict", json=payload)
        return http_answer.answer_json(answer, what=f"the container {self.container(ctx)}")

    def logs(
        self, *, ctx: ProviderContext, lines: int = 100, follow: bool = False
    ) -> Iterator[str]:
        """The container's last ``lines``; with ``follow``, new lines as they come
        (``docker logs -f``) until the container stops or the caller stops reading."""
        args = ["logs", "--tail", str(lines), self.container(ctx)]
        if not follow:
            yield from self._docker(ctx, *args, check=False).splitlines()
            return
        command = [self.section(ctx).cli, *args, "--follow"]
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as proc:
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    yield line.rstrip("\n")
            finally:
                proc.terminate()
