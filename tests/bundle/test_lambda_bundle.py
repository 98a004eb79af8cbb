"""Lambda bundles built for real with uv (downloads wheels the first time; cached for
the session): the target platform's wheels only, a layer reused across model-only
changes, and a host build that answers an event in an isolated interpreter."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from slml.bundle.elf import scan
from slml.bundle.lambda_bundle import (
    UNZIPPED_LIMIT,
    LambdaOptions,
    build_lambda_bundle,
    choose_delivery,
    delivery,
    excluded_runtime_packages,
)
from slml.bundle.lock import Target
from slml.errors import PackageTooLarge
from slml.pipeline import LambdaBuildOutputs

pytestmark = pytest.mark.slow
MB = 1024 * 1024
EVENT = Path(__file__).parents[1] / "fixtures" / "events" / "apigw-http-api-v2.json"


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    shared = os.environ.get("SLML_TEST_CACHE")  # reuse wheels across runs when set
    return Path(shared) if shared else tmp_path_factory.mktemp("cache")


def build(artifact: Path, out: Path, cache: Path, **kwargs):
    target = kwargs.pop("target", None)
    return build_lambda_bundle(
        artifact, out, options=LambdaOptions(**kwargs), cache_dir=cache, target=target
    )


@pytest.mark.parametrize(("arch", "machine"), [("x86_64", 62), ("arm64", 183)])
def test_python312_bundle_holds_only_that_machines_manylinux_wheels(
    iris_artifact, tmp_path, cache, arch, machine
):
    # bytecode: never, so the zip's only .pyc would be stale ones slimming missed
    bundle = build(iris_artifact, tmp_path / "out", cache, architecture=arch, bytecode="never")
    python = bundle.files["layer_dir"]
    binaries = scan(python)
    assert len(binaries) > 50  # numpy, scipy, sklearn
    assert {(b.kind, b.machine, b.bits) for b in binaries} == {("elf", machine, 64)}
    tags = [
        line.split(":", 1)[1].strip()
        for wheel in python.glob("*.dist-info/WHEEL")
        for line in wheel.read_text().splitlines()
        if line.startswith("Tag:")
    ]
    native = [t for t in tags if not t.endswith("-any")]
    want = "x86_64" if arch == "x86_64" else "aarch64"
    assert native and all("manylinux" in t and t.endswith(want) for t in native)
    assert any(t.startswith("cp312-") for t in native)
    with zipfile.ZipFile(bundle.files["layer"]) as zf:
        names = zf.namelist()
    assert all(n.startswith("python/") for n in names)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert not any("/tests/" in n for n in names if n.startswith("python/sklearn/"))
    assert any(n.endswith(".dist-info/METADATA") for n in names)
    assert f"delivery: {delivery(bundle)}" in bundle.notes[-1]
    built = bundle.outputs  # the builder's decision, typed: providers read it, not notes
    assert isinstance(built, LambdaBuildOutputs)
    assert built.function_zip == bundle.files["zip"] and built.layer_zip == bundle.files["layer"]
    assert bundle.notes[-1] == f"delivery: {built.delivery}: {built.reason}"


def test_model_only_change_reuses_the_layer(iris_artifact, tmp_path, cache):
    first = build(iris_artifact, tmp_path / "a", cache)
    (iris_artifact / "model" / "model.joblib").write_bytes(
        (iris_artifact / "model" / "model.joblib").read_bytes()
    )
    manifest = json.loads((iris_artifact / "slml-model.json").read_text())
    manifest["version"] = "2"
    (iris_artifact / "slml-model.json").write_text(json.dumps(manifest))
    second = build(iris_artifact, tmp_path / "b", cache)
    assert second.reused and second.lock_hash == first.lock_hash
    assert first.files["layer"].read_bytes() == second.files["layer"].read_bytes()
    with zipfile.ZipFile(second.files["zip"]) as zf:
        names = set(zf.namelist())
    assert {"slml_handler.py", "slml/runtime/app.py", "model/slml-model.json"} <= names
    assert second.size.parts["function_zipped"] < 1 * MB


def predict_event(rows: list[list[float]]) -> dict:
    """An HTTP API v2 event (SAM's shape) posting ``rows`` to /predict, base64 body."""
    event = json.loads(EVENT.read_text())
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/predict"
    event["headers"] = {"content-type": "application/json"}
    event["rawQueryString"] = ""
    event["body"] = base64.b64encode(json.dumps({"instances": rows}).encode()).decode()
    return event


def run_isolated(
    bundle, event: dict, *, flags: tuple[str, ...] = ("-I", "-S"), after: str = ""
) -> subprocess.CompletedProcess:
    """Run the handler on ``event`` in a fresh interpreter (``flags``) with only the
    bundle on sys.path; ``after`` runs once it answered. The response is stdout's last
    line."""
    function, layer = str(bundle.files["function"]), str(bundle.files["layer_dir"])
    code = (
        "import sys, json\n"
        f"sys.path[:0] = [{function!r}, {layer!r}]\n"
        "import slml_handler, sklearn\n"
        f"assert sklearn.__file__.startswith({layer!r}), sklearn.__file__\n"
        "response = slml_handler.handler(json.loads(sys.stdin.read()), None)\n"
        f"{after}\n"
        "print(json.dumps(response))\n"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "SLML_MODEL_DIR": str(bundle.files["function"] / "model"),
    }
    return subprocess.run(
        [sys.executable, *flags, "-c", code], input=json.dumps(event), capture_output=True,
        text=True, env=env, timeout=120, check=False,
    )  # fmt: skip


def test_host_bundle_is_self_contained(iris_artifact, tmp_path, cache, iris_rows):
    """Built for this interpreter, run with `python -I -S` and only the bundle on
    sys.path: it answers an HTTP API v2 event with predictions."""
    bundle = build(iris_artifact, tmp_path / "out", cache, target=Target.here("aws-host"))
    done = run_isolated(bundle, predict_event(iris_rows))
    assert done.returncode == 0, done.stderr[-2000:]
    response = json.loads(done.stdout.strip().splitlines()[-1])
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["predictions"] == [0, 2, 1]


def test_runtime_provided_packages_are_left_out_unless_pinned():
    assert excluded_runtime_packages(["scikit-learn==1.5"]) == (
        "boto3", "botocore", "s3transfer", "jmespath",
    )  # fmt: skip
    assert "boto3" not in excluded_runtime_packages(["boto3==1.34.0", "numpy"])


def test_delivery_paths_and_the_too_large_error():
    assert choose_delivery(layer_zip=10 * MB, function_zip=MB, unzipped=100 * MB,
                           large_bundle="fail")[0] == "direct"  # fmt: skip
    mode, why = choose_delivery(layer_zip=60 * MB, function_zip=MB, unzipped=200 * MB,
                                large_bundle="fail")  # fmt: skip
    assert mode == "s3" and "50 MB" in why
    mode, why = choose_delivery(layer_zip=90 * MB, function_zip=MB, unzipped=UNZIPPED_LIMIT + 1,
                                large_bundle="image")  # fmt: skip
    assert mode == "image" and "250 MB" in why
    with pytest.raises(PackageTooLarge) as info:
        choose_delivery(layer_zip=90 * MB, function_zip=MB, unzipped=300 * MB, large_bundle="fail")
    assert "ONNX" in info.value.hint and "large_bundle: image" in info.value.hint


def test_too_large_bundle_with_image_renders_a_lambda_dockerfile(
    iris_artifact, tmp_path, cache, monkeypatch
):
    import slml.bundle.lambda_delivery as ld

    monkeypatch.setattr(ld, "UNZIPPED_LIMIT", 1 * MB)  # the iris bundle is ~170 MB
    bundle = build(iris_artifact, tmp_path / "out", cache, large_bundle="image")
    dockerfile = (bundle.files["image"] / "Dockerfile").read_text()
    assert "FROM public.ecr.aws/lambda/python:3.12" in dockerfile
    assert 'CMD ["slml_handler.handler"]' in dockerfile
    assert (bundle.files["image"] / "function" / "slml_handler.py").is_file()
    assert delivery(bundle) == "image"
    if shutil.which("hadolint"):
        lint = subprocess.run(["hadolint", "--failure-threshold", "error", "-"], input=dockerfile,
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert lint.returncode == 0, lint.stdout


def test_python311_without_wheels_for_amazon_linux_2_says_what_to_do(
    tmp_path: Path, iris_artifact: Path
) -> None:
    """scikit-learn 1.9 ships manylinux_2_28 wheels only: nothing resolves for python3.11
    (Amazon Linux 2), and the error says to move to python3.12."""
    from slml.bundle.lambda_bundle import LambdaOptions, build_lambda_bundle
    from slml.errors import PackagingError

    with pytest.raises(PackagingError) as info:
        build_lambda_bundle(
            iris_artifact, tmp_path / "out",
            options=LambdaOptions(runtime="python3.11", architecture="x86_64"),
            cache_dir=tmp_path / "cache",
        )  # fmt: skip
    assert "scikit-learn" in info.value.message
    assert "aws.runtime: python3.12" in (info.value.hint or "")
