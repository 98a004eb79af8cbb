"""``slml:gcp:CloudRunBatchJob``: ``slml batch --provider gcp`` as a Cloud Run Job.

One ``cloudrunv2.Job`` running the endpoint's own image with ``python -m
slml.runtime.batch_job``: ``task_count`` tasks, each scoring the partitions that
``CLOUD_RUN_TASK_INDEX`` / ``CLOUD_RUN_TASK_COUNT`` give it. The input's and the output's
Cloud Storage buckets are mounted as volumes (the input read-only), so the task reads
and writes plain files. Outputs: ``job_name``, ``project``, ``region``.

``gcs_location`` and ``job_args`` are pure functions, tested without Pulumi.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pulumi

from slml.errors import ConfigError

TYPE = "slml:gcp:CloudRunBatchJob"
INPUT_MOUNT = "/mnt/slml-input"
OUTPUT_MOUNT = "/mnt/slml-output"
MAX_TASKS = 10_000  # Cloud Run Jobs' limit on tasks per execution
_BUCKET = re.compile(r"^gs://([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])(?:/(.*))?$")


@dataclass(frozen=True)
class CloudRunJobSpec:
    """Everything the component needs, as plain data."""

    job: str
    region: str
    image: str
    input_url: str
    output_url: str
    project: str | None = None
    tasks: int = 10
    parallelism: int = 0  # 0: as many at once as Cloud Run allows
    chunk_rows: int = 10_000
    keep: tuple[str, ...] = ()
    cpu: str = "1"
    memory: str = "2Gi"
    task_timeout: int = 3600
    max_retries: int = 3
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.tasks <= MAX_TASKS:
            raise ConfigError(f"--tasks {self.tasks} is out of range: Cloud Run Jobs run 1 "
                              f"to {MAX_TASKS} tasks")
        gcs_location(self.input_url, what="INPUT", file=True)
        gcs_location(self.output_url, what="OUTPUT", file=False)


def gcs_location(url: str, *, what: str, file: bool) -> tuple[str, str]:
    """(bucket, path inside it) of a ``gs://`` URL; ConfigError naming ``what`` otherwise."""
    match = _BUCKET.match(url)
    path = (match.group(2) or "").strip("/") if match else ""
    if match is None or (file and not path):
        want = "gs://BUCKET/PATH/FILE" if file else "gs://BUCKET[/PREFIX]"
        raise ConfigError(f"{what} {url!r} is not a Cloud Storage URL ({want})",
                          hint="a Cloud Run Job reads and writes Cloud Storage buckets, "
                               "mounted as volumes")  # fmt: skip
    return match.group(1), path


def job_args(spec: CloudRunJobSpec) -> list[str]:
    """The task's command line: the mounted input file and output directory."""
    _, source = gcs_location(spec.input_url, what="INPUT", file=True)
    _, prefix = gcs_location(spec.output_url, what="OUTPUT", file=False)
    args = ["-m", "slml.runtime.batch_job",
            "--input", f"{INPUT_MOUNT}/{source}",
            "--output", f"{OUTPUT_MOUNT}/{prefix}".rstrip("/"),
            "--chunk-rows", str(spec.chunk_rows)]  # fmt: skip
    for column in spec.keep:
        args += ["--keep", column]
    return args


class CloudRunBatchJob(pulumi.ComponentResource):
    """The Cloud Run Job for one batch run; see the module docstring."""

    job_name: pulumi.Output[str]
    project: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        spec: CloudRunJobSpec,
        *,
        run_token: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``run_token``: a new value starts one execution of the job (Cloud Run's
        ``start_execution_token``); None only creates or updates it."""
        super().__init__(TYPE, name, None, opts)
        import pulumi_gcp as gcp

        run = gcp.cloudrunv2
        in_bucket, _ = gcs_location(spec.input_url, what="INPUT", file=True)
        out_bucket, _ = gcs_location(spec.output_url, what="OUTPUT", file=False)
        container = run.JobTemplateTemplateContainerArgs(
            image=spec.image,
            commands=["python"],
            args=job_args(spec),
            resources=run.JobTemplateTemplateContainerResourcesArgs(
                limits={"cpu": spec.cpu, "memory": spec.memory}
            ),
            envs=[run.JobTemplateTemplateContainerEnvArgs(name=k, value=v)
                  for k, v in sorted(spec.env.items())],
            volume_mounts=[
                run.JobTemplateTemplateContainerVolumeMountArgs(name="input",
                                                                mount_path=INPUT_MOUNT),
                run.JobTemplateTemplateContainerVolumeMountArgs(name="output",
                                                                mount_path=OUTPUT_MOUNT),
            ],
        )
        job = run.Job(
            f"{name}-job",
            name=spec.job,
            location=spec.region,
            project=spec.project,
            deletion_protection=False,
            start_execution_token=run_token,
            template=run.JobTemplateArgs(
                task_count=spec.tasks,
                parallelism=spec.parallelism,
                template=run.JobTemplateTemplateArgs(
                    containers=[container],
                    max_retries=spec.max_retries,
                    timeout=f"{spec.task_timeout}s",
                    volumes=[
                        run.JobTemplateTemplateVolumeArgs(
                            name="input",
                            gcs=run.JobTemplateTemplateVolumeGcsArgs(bucket=in_bucket,
                                                                     read_only=True)),
                        run.JobTemplateTemplateVolumeArgs(
                            name="output",
                            gcs=run.JobTemplateTemplateVolumeGcsArgs(bucket=out_bucket,
                                                                     read_only=False)),
                    ],
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )  # fmt: skip
        self.job_name = job.name
        self.project = job.project
        self.register_outputs({"job_name": self.job_name, "project": self.project})
