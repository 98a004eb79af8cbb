"""``slml batch --provider gcp``: the same scoring as a Cloud Run Job, previewed first.

The job runs the image that serves the stage's Cloud Run endpoint (from the gcp
deployment record, or ``gcp.image_uri``), so batch and real-time predictions come from
the same bytes. Its Pulumi stack is the endpoint's stack name plus ``-batch``. ``preview``
is the offline plan (Pulumi mocks) or a real preview; ``run`` is ``pulumi up`` with a new
``start_execution_token``, which starts one execution of the job.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from slml import engine as engine_mod
from slml.api import Session
from slml.batch import BatchError, BatchOptions
from slml.engine import Program
from slml.infra.cloudrun_job import CloudRunJobSpec
from slml.pipeline import Plan
from slml.providers.outputs import GcpOutputs

CLOUD_PROVIDERS = ("gcp",)
OFFLINE_NOTE = ("offline plan: the job's Pulumi program ran under mocks on this machine; "
                "without --preview the job is created and one execution started")
NOT_DEPLOYED_IMAGE = "(the image of `slml deploy --provider gcp`: not deployed yet)"


@dataclass(frozen=True)
class CloudJob:
    provider: str
    spec: CloudRunJobSpec
    program: Program
    warnings: tuple[str, ...] = ()


def cloud_job(session: Session, input_url: str, output_url: str, options: BatchOptions, *,
              tasks: int, parallelism: int, for_preview: bool) -> CloudJob:
    """The job's spec and Pulumi program for ``session``'s provider and stage."""
    name = session.provider.name
    if name not in CLOUD_PROVIDERS:
        raise BatchError(
            f"--provider {name} has no batch job in slml yet",
            hint="use --provider gcp (a Cloud Run Job) or sagemaker (Batch Transform), or "
                 "score here with --engine local or ray (s3:// and az:// URLs work there)",
        )
    ctx = session.ctx
    cfg = ctx.config.section(name)
    image, warnings = _image(session, for_preview=for_preview)
    token = uuid.uuid4().hex if not for_preview else "(a new token starts an execution)"
    spec = CloudRunJobSpec(
        job=f"{ctx.config.name}-{ctx.stage}-batch"[:63].rstrip("-"), region=cfg.region,
        project=cfg.project, image=image, input_url=input_url, output_url=output_url,
        tasks=tasks, parallelism=parallelism, chunk_rows=options.chunk_rows,
        keep=options.keep, cpu=cfg.cpu, memory=cfg.memory, env=dict(cfg.env),
    )  # fmt: skip

    def program() -> None:
        import pulumi

        from slml.infra.cloudrun_job import CloudRunBatchJob

        job = CloudRunBatchJob(spec.job, spec, run_token=token)
        pulumi.export("job_name", job.job_name)
        pulumi.export("project", job.project)
        pulumi.export("region", spec.region)

    return CloudJob(name, spec, program, warnings)


def _image(session: Session, *, for_preview: bool) -> tuple[str, tuple[str, ...]]:
    ctx = session.ctx
    cfg = ctx.config.section(session.provider.name)
    image = GcpOutputs.of(ctx.state.read_record(ctx.stage, session.provider.name)).image
    image = image or cfg.image_uri
    if image:
        return str(image), ()
    if for_preview:
        return NOT_DEPLOYED_IMAGE, (
            f"stage {ctx.stage} has no gcp deployment: run `slml deploy --provider gcp` "
            "first (the job runs the endpoint's image), or set gcp.image_uri",
        )
    raise BatchError(
        f"stage {ctx.stage} has no gcp deployment whose image the job could run",
        hint="run `slml deploy --provider gcp` first, or set gcp.image_uri",
    )


def preview(job: CloudJob, session: Session) -> Plan:
    """The job's plan: offline under Pulumi's mocks (no CLI or credentials needed)."""
    ctx = session.ctx
    resources = engine_mod.offline_plan(job.program, project=ctx.config.name,
                                        stack=f"{ctx.config.name}-{ctx.stage}-batch")
    steps = (
        f"run {job.spec.tasks} task(s) of {job.spec.image}",
        f"each task scores the partitions k with k % {job.spec.tasks} == its index, reading "
        f"{job.spec.input_url} and writing {job.spec.output_url} (mounted buckets)",
    )
    return Plan(provider=job.provider, stage=ctx.stage, kind="offline", resources=resources,
                steps=steps, warnings=job.warnings, notes=(OFFLINE_NOTE,))  # fmt: skip


def run(job: CloudJob, session: Session) -> dict[str, Any]:
    """Create or update the job and start one execution. Needs the Pulumi CLI."""
    engine = session.provider.engine(session.ctx)  # type: ignore[attr-defined]
    engine.stack_name = f"{engine.stack_name}-batch"
    return engine.up(job.program, on_output=session.ctx.reporter.detail)
