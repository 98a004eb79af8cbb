"""`slml batch --provider gcp`: a Cloud Run Job running the endpoint's image, planned under
Pulumi's mocks (no CLI, no credentials), each task given its shard by Cloud Run."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from slml.api import open_session
from slml.batch import BatchOptions
from slml.batch import cloud as cloud_batch
from slml.errors import ConfigError, ProviderUnavailable
from slml.infra.cloudrun_job import CloudRunJobSpec, job_args
from tests.batch.conftest import SLML

ROOT = Path(__file__).resolve().parents[2]
IN, OUT = "gs://slml-in/data/rows.csv", "gs://slml-out/scored/run1"


def plan_of(project: Path, **kwargs):
    session = open_session(project / "slml.yaml", provider="gcp")
    job = cloud_batch.cloud_job(session, IN, OUT, BatchOptions(keep=("id",)), tasks=4,
                                parallelism=2, for_preview=True, **kwargs)
    return session, job, cloud_batch.preview(job, session)


def test_the_plan_is_one_job_with_both_buckets_mounted(project: Path) -> None:
    _, job, plan = plan_of(project)
    types = {r.type: r for r in plan.resources}
    assert "slml:gcp:CloudRunBatchJob" in types
    inputs = types["gcp:cloudrunv2/job:Job"].inputs
    template = inputs["template"]
    assert (template["task_count"], template["parallelism"]) == (4, 2)
    container = template["template"]["containers"][0]
    assert container["args"][:2] == ["-m", "slml.runtime.batch_job"]
    assert container["args"][container["args"].index("--input") + 1] == (
        "/mnt/slml-input/data/rows.csv")
    volumes = {v["name"]: v["gcs"] for v in template["template"]["volumes"]}
    assert volumes == {"input": {"bucket": "slml-in", "read_only": True},
                       "output": {"bucket": "slml-out", "read_only": False}}
    assert inputs["deletion_protection"] is False
    assert any("no gcp deployment" in w for w in plan.warnings)  # not deployed: said so
    assert job.spec.image == cloud_batch.NOT_DEPLOYED_IMAGE


def test_the_job_runs_the_image_of_the_deployed_endpoint(project: Path) -> None:
    session = open_session(project / "slml.yaml", provider="gcp")
    image = "europe-west1-docker.pkg.dev/p/iris-dev/model@sha256:" + "a" * 64
    session.ctx.state.write_record("dev", "gcp", {"provider": "gcp", "stage": "dev",
                                                  "version": 1, "outputs": {"image": image}})
    _, job, plan = plan_of(project)
    assert job.spec.image == image and not plan.warnings
    with pytest.raises(ProviderUnavailable, match="Pulumi CLI"):  # run needs the CLI
        cloud_batch.run(cloud_batch.cloud_job(session, IN, OUT, BatchOptions(), tasks=1,
                                              parallelism=0, for_preview=False), session)


def test_the_cli_previews_the_job(project: Path) -> None:
    done = subprocess.run(
        [SLML, "batch", IN, OUT, "--provider", "gcp", "--tasks", "3", "--preview", "--json"],
        cwd=project, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["kind"] == "offline" and "3 task(s)" in plan["steps"][0]
    assert "gcp:cloudrunv2/job:Job" in {r["type"] for r in plan["resources"]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gs://slml-in/", OUT], "INPUT 'gs://slml-in/' is not a Cloud Storage URL"),
        (["s3://bucket/rows.csv", OUT], "is not a Cloud Storage URL"),
        ([IN, "gs://slml-out", "--tasks", "0"], "--tasks 0 is out of range"),
        ([IN, OUT, "--provider", "aws"], "--provider aws has no batch job in slml yet"),
    ],
)
def test_bad_cloud_jobs_are_clear_errors(project: Path, args: list[str], message: str) -> None:
    if "--provider" not in args:
        args = [*args, "--provider", "gcp"]
    done = subprocess.run([SLML, "batch", *args, "--preview"], cwd=project, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_job_args_keep_columns_and_chunking() -> None:
    spec = CloudRunJobSpec(job="j", region="europe-west1", image="img", input_url=IN,
                           output_url="gs://slml-out", chunk_rows=500, keep=("id", "ts"))
    assert job_args(spec) == ["-m", "slml.runtime.batch_job",
                              "--input", "/mnt/slml-input/data/rows.csv",
                              "--output", "/mnt/slml-output", "--chunk-rows", "500",
                              "--keep", "id", "--keep", "ts"]  # fmt: skip
    with pytest.raises(ConfigError, match="tasks 10001"):
        CloudRunJobSpec(job="j", region="r", image="i", input_url=IN, output_url=OUT,
                        tasks=10_001)
