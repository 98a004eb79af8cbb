"""The iris Lambda bundle (function zip + layer), laid out as Lambda does, under AWS's
Runtime Interface Client: python3.12 and python3.13 on x86_64, python3.13 on arm64
under qemu emulation. Every fixture event; init errors through the Runtime API."""

from __future__ import annotations

from pathlib import Path

import pytest

from containers.conftest import record
from containers.engine import arm64_emulation
from containers.events import cases, check
from containers.images.recipes import LAMBDA_IMAGES
from containers.lambda_harness import run_lambda, unpack
from slml.bundle.bytecode import Interpreter, probe
from slml.bundle.lambda_bundle import HANDLER, LambdaOptions, build_lambda_bundle
from slml.config.sections import AwsConfig

pytestmark = [pytest.mark.slow, pytest.mark.containers, pytest.mark.timeout(1800)]
PYENV = Path.home() / ".pyenv" / "versions"
MEMORY = AwsConfig().memory  # what aws.memory asks for by default: the container's limit
PREDICTIONS = [0, 2]


def pyenv_finder(minor: str) -> Interpreter | None:
    """The machine's pyenv build of CPython ``minor`` (the shims refuse inactive ones)."""
    for home in sorted(PYENV.glob(f"{minor}.*"), reverse=True):
        found = probe(str(home / "bin" / f"python{minor}"))
        if found:
            return found
    return None


def build(artifact: Path, out: Path, cache: Path, *, runtime: str, arch: str,
          bytecode: str = "always"):  # fmt: skip
    options = LambdaOptions(runtime=runtime, architecture=arch, bytecode=bytecode)  # type: ignore[arg-type]
    return build_lambda_bundle(artifact, out, options=options, cache_dir=cache,
                               finder=pyenv_finder)  # fmt: skip


def laid_out(bundle, where: Path) -> tuple[Path, Path]:
    return unpack(bundle.files["zip"], where / "task"), unpack(bundle.files["layer"], where / "opt")


TARGETS = [
    pytest.param("python3.12", "x86_64", id="python3.12-x86_64"),
    pytest.param("python3.13", "x86_64", id="python3.13-x86_64"),
    pytest.param("python3.13", "arm64", id="python3.13-arm64-emulated"),
]


@pytest.mark.parametrize(("runtime", "arch"), TARGETS)
def test_iris_bundle_answers_every_fixture_event_under_awslambdaric(
    engine, base_image, bundle_cache, _iris_artifact_master, tmp_path, runtime, arch
):
    if arch == "arm64" and not arm64_emulation():
        pytest.skip("qemu-aarch64 is not enabled in binfmt_misc (make engine enables it)")
    recipe = LAMBDA_IMAGES[(runtime, arch)]
    image = base_image(recipe)
    bundle = build(
        _iris_artifact_master, tmp_path / "out", bundle_cache, runtime=runtime, arch=arch
    )
    task, opt = laid_out(bundle, tmp_path)
    with run_lambda(
        engine, image=image, runtime=runtime, memory=MEMORY, task=task, opt=opt, handler=HANDLER,
    ) as fn:  # fmt: skip
        record(f"lambda init {runtime} {arch} (bytecode)", fn.init_seconds)
        for case in cases(PREDICTIONS):
            result = fn.invoke(case.event, timeout=600)
            assert result.kind == "response", (case.name, result.body, fn.logs()[-2000:])
            check(case, result.body)
        machine = fn.engine.run(["exec", fn.name, "/var/lang/bin/python3", "-c",
                                 "import platform; print(platform.machine())"]).stdout  # fmt: skip
        assert machine.decode().strip() == ("aarch64" if arch == "arm64" else "x86_64")
        assert_sandboxed(fn)


def assert_sandboxed(fn) -> None:
    """Read-only except /tmp, Lambda's non-root user, the configured memory."""
    info = fn.engine.inspect(fn.name)
    assert info["HostConfig"]["ReadonlyRootfs"] and info["Config"]["User"] == "993:990"
    assert info["HostConfig"]["Memory"] == MEMORY * 1024 * 1024
    probe = "touch /tmp/ok && ! touch /var/task/x 2>/dev/null && ! touch /x 2>/dev/null && id -u"
    uid = fn.engine.run(["exec", fn.name, "sh", "-c", probe]).stdout.decode().strip()
    assert uid == "993"


@pytest.mark.parametrize("runtime", ["python3.12", "python3.13"])
def test_init_time_with_and_without_bytecode(
    engine, base_image, bundle_cache, _iris_artifact_master, tmp_path, runtime
):
    image = base_image(LAMBDA_IMAGES[(runtime, "x86_64")])
    inits = {}
    for bytecode in ("always", "never"):
        bundle = build(_iris_artifact_master, tmp_path / bytecode, bundle_cache, runtime=runtime,
                       arch="x86_64", bytecode=bytecode)  # fmt: skip
        task, opt = laid_out(bundle, tmp_path / f"{bytecode}-run")
        with run_lambda(engine, image=image, runtime=runtime, memory=MEMORY, task=task, opt=opt,
                        handler=HANDLER) as fn:  # fmt: skip
            inits[bytecode] = fn.init_seconds
            assert fn.invoke(cases(PREDICTIONS)[0].event).kind == "response"
    record(f"lambda init {runtime} x86_64 with bytecode", inits["always"])
    record(f"lambda init {runtime} x86_64 without bytecode", inits["never"])
    assert inits["always"] < inits["never"]


def test_a_broken_handler_string_is_an_init_error_through_the_runtime_api(
    engine, base_image, bundle_cache, _iris_artifact_master, tmp_path
):
    image = base_image(LAMBDA_IMAGES[("python3.12", "x86_64")])
    bundle = build(_iris_artifact_master, tmp_path / "out", bundle_cache, runtime="python3.12",
                   arch="x86_64")  # fmt: skip
    task, opt = laid_out(bundle, tmp_path)
    with run_lambda(engine, image=image, runtime="python3.12", memory=MEMORY, task=task, opt=opt,
                    handler="slml_handler.no_such_handler", wait=False) as fn:  # fmt: skip
        error = fn.api.wait_init_error(timeout=120)
        assert error["errorType"] == "Runtime.HandlerNotFound", error
        assert "no_such_handler" in error["errorMessage"]
        assert fn.api.first_next_at is None  # it never asked for an event
