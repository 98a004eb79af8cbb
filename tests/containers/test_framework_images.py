"""Each framework's Cloud Run image, built with ``docker build`` from the context slml
generates, run as Cloud Run runs it: its size, its cold start (container start to the
first 200 on /predict) and its answers, which are the model's."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from containers.conftest import record
from containers.engine import NETWORK
from containers.images.recipes import PYTHON_311
from containers.test_container_images import free_port
from containers.test_lambda_native_files import X, native_file
from slml.bundle.container import build_container_context
from slml.bundle.image_native import LIB_DIR

pytestmark = [pytest.mark.slow, pytest.mark.containers, pytest.mark.timeout(1800)]
MB = 1024 * 1024


def first_answer(url: str, rows: list, *, timeout: float = 90) -> tuple[httpx.Response, float]:
    """The first answer of /predict that is not a connection error, and how long it took."""
    started = time.monotonic()
    while True:
        try:
            return httpx.post(url, json={"instances": rows}, timeout=5), time.monotonic() - started
        except httpx.TransportError:
            if time.monotonic() - started > timeout:
                raise
            time.sleep(0.05)


@pytest.mark.parametrize("kind", ["xgboost.json", "lightgbm", "catboost"])
def test_a_framework_image_answers_what_the_model_answers(
    engine, base_image, index_proxy, bundle_cache, tmp_path: Path, kind: str
) -> None:
    from slml.artifact.model_file import save_model_file

    base_image(PYTHON_311)
    path, want = native_file(kind, tmp_path)
    artifact = save_model_file(path, tmp_path / "art", sample_input=X[:10]).path
    context = tmp_path / "context"
    build_container_context(artifact, context, provider="gcp", cache_dir=bundle_cache,
                            measure=False)  # fmt: skip
    tag = f"slml-test/{kind.replace('.', '-')}:container"
    started = time.monotonic()
    output = engine.build(context, tag, build_args=index_proxy.build_args())
    build_s = time.monotonic() - started
    if kind == "lightgbm":  # Debian slim has no libgomp; scikit-learn's wheel gives one
        # asked of the image, not of the build's output: a cached layer prints nothing
        found = engine.run(["run", "--rm", *NETWORK, "--entrypoint", "python", tag, "-c",
                            "import ctypes, lightgbm; ctypes.CDLL('libgomp.so.1');"
                            "print(open('/proc/self/maps').read())"]).stdout.decode()  # fmt: skip
        assert f"{LIB_DIR}/libgomp.so.1" in found, output[-3000:]
    port = free_port()
    name = engine.start(name=f"slml-{kind.replace('.', '-')}", image=tag,
                        options=["--env", f"PORT={port}"])  # fmt: skip
    try:
        try:
            answer, cold = first_answer(f"http://127.0.0.1:{port}/predict", X[:6].tolist())
        except httpx.TransportError:
            pytest.fail(f"the {kind} image never answered:\n{engine.logs(name)[-3000:]}")
        assert answer.status_code == 200, answer.text
        np.testing.assert_allclose(answer.json()["predictions"], want, rtol=1e-6)
    finally:
        engine.remove(name)
    record(f"{kind} Cloud Run image", {"image_mb": round(engine.image_size(tag) / MB, 1),
                                       "cold_start_s": round(cold, 2),
                                       "build_s": round(build_s, 1)})  # fmt: skip
