"""The Cloud Run / SageMaker image, built with ``docker build`` from the context slml
generates (its Dockerfile unchanged, on the stand-in python:3.11.15-slim-bookworm), run
as each platform runs it."""

from __future__ import annotations

import json
import re
import shutil
import socket
import tarfile
import time

import httpx
import pytest

from containers.conftest import record, record_layers
from containers.images.recipes import PYTHON_311
from slml.bundle.container import UID, build_container_context

# how the Dockerfile's dependency layer (pip, native check, slim, strip, bytecode) ends
DEPENDENCY_LAYER_END = (
    "rm /app/slml_slim.py /app/slml_native.py /app/slml_strip.py /app/slml_bytecode.py"
)

pytestmark = [pytest.mark.slow, pytest.mark.containers, pytest.mark.timeout(1800)]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, *, timeout: float = 120) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module")
def image(engine, base_image, index_proxy, bundle_cache, _iris_artifact_master, tmp_path_factory):
    base_image(PYTHON_311)
    context = tmp_path_factory.mktemp("context") / "gcp"
    build_container_context(_iris_artifact_master, context, provider="gcp",
                            cache_dir=bundle_cache, measure=False)  # fmt: skip
    tag = "slml-test/iris:container"
    started = time.monotonic()
    engine.build(context, tag, build_args=index_proxy.build_args())
    record("docker build, Cloud Run/SageMaker image (iris)", time.monotonic() - started)
    record("image size slml-test/iris:container", engine.image_size(tag))
    record_layers(engine, tag, {"dependencies": DEPENDENCY_LAYER_END,
                                "runtime": "in /app/", "model": "in /app/model/"})  # fmt: skip
    return tag


def test_cloud_run_contract(engine, image):
    """PORT from the platform, the image's own non-root user, 0.0.0.0:$PORT, /healthz and
    /predict, SIGTERM → exit 0 within 10 s."""
    user = engine.inspect_image(image)["Config"]["User"]
    assert user == str(UID)
    port = free_port()
    name = engine.start(name="slml-cloudrun", image=image, options=["--env", f"PORT={port}"])
    try:
        assert wait_http(f"http://127.0.0.1:{port}/healthz").json()["status"] == "ok"
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", json={"instances": ROWS})
        assert answer.status_code == 200 and answer.json()["predictions"] == [0, 2]
        ready = [json.loads(line) for line in engine.logs(name).splitlines()
                 if line.startswith("{") and '"ready"' in line]  # fmt: skip
        assert ready and ready[0]["host"] == "0.0.0.0" and ready[0]["port"] == port
        uid = engine.run(["exec", name, "python", "-c", "import os; print(os.getuid())"]).stdout
        assert uid.decode().strip() == str(UID)
        started = time.monotonic()
        engine.run(["kill", "--signal", "TERM", name])
        code = engine.run(["wait", name], timeout=30).stdout.decode().strip()
        took = time.monotonic() - started
        record("Cloud Run SIGTERM to exit", took)
        assert code == "0" and took < 10
    finally:
        engine.remove(name)


def test_sagemaker_contract_serves_the_mounted_model_not_the_baked_one(
    engine, image, bundle_cache, _iris_artifact_master, tmp_path
):
    """``IMAGE serve`` on 8080, /ping, /invocations (JSON and CSV), the model read from
    /opt/ml/model (model.tar.gz unpacked, mounted read-only): a different model version
    from the one baked into the image, and the one that answers."""
    other = shutil.copytree(_iris_artifact_master, tmp_path / "v2")
    manifest = json.loads((other / "slml-model.json").read_text())
    manifest["version"] = "2"  # the files (and their hashes) stay the same
    (other / "slml-model.json").write_text(json.dumps(manifest))
    build_container_context(other, tmp_path / "ctx", provider="sagemaker", cache_dir=bundle_cache,
                            model_tar=tmp_path / "model.tar.gz", measure=False)  # fmt: skip
    opt_ml_model = tmp_path / "opt-ml-model"
    with tarfile.open(tmp_path / "model.tar.gz") as tar:
        tar.extractall(opt_ml_model, filter="data")
    opt_ml_model.chmod(0o755)
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 8080)) == 0:
            pytest.fail("port 8080 is taken on this machine: SageMaker's contract needs it")
    name = engine.start(name="slml-sagemaker", image=image, command=["serve"],
                        options=["--volume", f"{opt_ml_model}:/opt/ml/model:ro"])  # fmt: skip
    try:
        ping = wait_http("http://127.0.0.1:8080/ping")
        assert ping.status_code == 200
        assert httpx.get("http://127.0.0.1:8080/metadata").json()["version"] == "2"
        as_json = httpx.post("http://127.0.0.1:8080/invocations", json={"instances": ROWS})
        assert as_json.status_code == 200 and as_json.json()["predictions"] == [0, 2]
        csv = "\n".join(",".join(map(str, row)) for row in ROWS)
        as_csv = httpx.post("http://127.0.0.1:8080/invocations", content=csv,
                            headers={"content-type": "text/csv"})  # fmt: skip
        assert as_csv.status_code == 200 and as_csv.json()["predictions"] == [0, 2]
        assert as_csv.json()["version"] == "2"
    finally:
        engine.remove(name)


def test_the_served_frameworks_load_from_bytecode_alone(engine, image):
    """The dependency layer's bytecode walk (slml_bytecode.py): scikit-learn's modules
    ship as bytecode only (``NAME.pyc``, no ``NAME.py``), and the server answers with
    every site-packages module it imported loaded from bytecode (``PYTHONVERBOSE``
    logs where each code object came from), none compiled from a source."""
    port = free_port()
    name = engine.start(name="slml-bytecode", image=image,
                        options=["--env", f"PORT={port}", "--env", "PYTHONVERBOSE=1"])  # fmt: skip
    try:
        assert wait_http(f"http://127.0.0.1:{port}/healthz").status_code == 200
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", json={"instances": ROWS})
        assert answer.status_code == 200 and answer.json()["predictions"] == [0, 2]
        origins = re.findall(r"^# code object from '?([^'\n]+)'?$", engine.logs(name), re.M)
    finally:
        engine.remove(name)
    site = [o for o in origins if "/site-packages/" in o]
    sourceless = [o for o in site if o.endswith(".pyc") and "/__pycache__/" not in o]
    record("iris container: site-packages modules served from bytecode only", len(sourceless))
    assert any(o.endswith("/site-packages/sklearn/__init__.pyc") for o in sourceless)
    assert len(sourceless) > 300 and not [o for o in site if o.endswith(".py")], site[:5]


def test_the_dependency_layer_is_slimmed_like_the_lambda_layer(
    engine, image, bundle_cache, _iris_artifact_master, tmp_path
):
    """The image's dependency layer runs slml's slimming in the same layer as pip: no
    test suites, stubs or Cython sources are left in it. Its size beside the Lambda layer
    of the same model (x86_64, bytecode compiled in both) is a figure of the run; the
    Lambda layer is python3.12's, as python3.11 functions run on Amazon Linux 2, whose
    glibc this scikit-learn's wheels do not support."""
    from containers.test_lambda_zip import build

    listing = engine.run(["run", "--rm", "--pull", "never", "--network", "host",
                          "--entrypoint", "python", image, "-c",
                          "import sysconfig, pathlib; root = pathlib.Path(sysconfig."
                          "get_paths()['purelib']); print(len([p for p in root.rglob('*') "
                          "if p.name in ('tests', 'test') and (p.parent / '__init__.py')"
                          ".exists() or p.suffix in ('.pyi', '.pyx', '.pxd')]))"])  # fmt: skip
    assert listing.stdout.decode().strip() == "0"
    layers = engine.layer_sizes(image)
    deps = sum(n for by, n in layers
               if by.rstrip().endswith(DEPENDENCY_LAYER_END))
    lam = build(_iris_artifact_master, tmp_path / "lambda", bundle_cache, runtime="python3.12",
                arch="x86_64")  # fmt: skip
    layer = lam.size.parts["layer"]
    record("iris container dependency layer (3.11) vs Lambda layer (python3.12)", {
        "container_mb": round(deps / 2**20, 1), "lambda_layer_mb": round(layer / 2**20, 1),
        "ratio": round(deps / layer, 2)})  # fmt: skip
