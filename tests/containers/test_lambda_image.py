"""The Lambda container image (``aws.large_bundle: image``): built with ``docker build``
from the context slml writes, on the stand-in public.ecr.aws/lambda/python:3.12; its
entrypoint and CMD satisfy the Lambda image contract under the same harness."""

from __future__ import annotations

import time

import pytest

from containers.conftest import record, record_layers
from containers.events import cases, check
from containers.images.recipes import LAMBDA_312
from containers.lambda_harness import run_lambda
from containers.test_lambda_zip import MEMORY, PREDICTIONS, build
from slml.bundle.lambda_image import write_image_context

pytestmark = [pytest.mark.slow, pytest.mark.containers, pytest.mark.timeout(1800)]


def test_lambda_container_image_answers_every_fixture_event(
    engine, base_image, bundle_cache, _iris_artifact_master, tmp_path
):
    base_image(LAMBDA_312)
    bundle = build(_iris_artifact_master, tmp_path / "out", bundle_cache, runtime="python3.12",
                   arch="x86_64")  # fmt: skip
    context = write_image_context(
        tmp_path / "out", python=bundle.files["layer_dir"], function=bundle.files["function"],
        target=_target(bundle), name="iris",
    )  # fmt: skip
    assert (context / "Dockerfile").read_text().count("FROM public.ecr.aws/lambda/python:3.12") == 1
    tag = "slml-test/iris:lambda-image"
    started = time.monotonic()
    engine.build(context, tag)
    record("docker build, Lambda container image (iris)", time.monotonic() - started)
    record("image size slml-test/iris:lambda-image", engine.image_size(tag))
    record_layers(engine, tag, {"dependencies, runtime and model (2 layers)": "in /var/task/"})
    with run_lambda(engine, image=tag, runtime="python3.12", memory=MEMORY) as fn:
        record("lambda init python3.12 x86_64 container image", fn.init_seconds)
        for case in cases(PREDICTIONS):
            result = fn.invoke(case.event)
            assert result.kind == "response", (case.name, result.body, fn.logs()[-2000:])
            check(case, result.body)


def _target(bundle):
    from slml.bundle.lock import Target

    return Target("aws", python_version=bundle.python_version, platform=bundle.platform)
