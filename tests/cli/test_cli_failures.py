"""Failures that are not slml bugs get a message with a way out, not "internal error":
a missing cloud extra (issue 11 D26), a full disk (D29); and --help shows no type after
boolean flags (issue 10, item 6)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from slml.cli import main
from slml.cli.failures import translate, with_disk_hint
from slml.errors import DiskFull, PackagingError, ProviderUnavailable
from tests.conftest import write_sklearn_artifact

#: Makes the named top-level packages unimportable, as in an install without the extra.
BLOCK_IMPORTS = textwrap.dedent(
    """
    import sys
    BLOCKED = set(sys.argv.pop(1).split(","))
    class Uninstalled:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, Uninstalled())
    from slml.cli import main
    main(sys.argv[1:])
    """
)


def slml_without(blocked: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-c", BLOCK_IMPORTS, blocked, *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.fixture
def aws_project(tmp_path: Path, iris_model) -> Path:
    write_sklearn_artifact(tmp_path / "iris", iris_model)
    (tmp_path / "slml.yaml").write_text("name: iris\nmodel: iris\nprovider: aws\n")
    return tmp_path


@pytest.mark.parametrize("blocked", ["pulumi,pulumi_aws", "pulumi_aws"])
def test_deploy_without_the_aws_extra_names_it(aws_project: Path, blocked: str) -> None:
    result = slml_without(blocked, ["deploy", "--provider", "aws"], aws_project)
    assert result.returncode == 2, result.stderr
    assert "pip install 'slml[aws]'" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert not (aws_project / ".slml" / "build").exists()  # refused before any build


def test_preview_without_the_aws_extra_names_it(aws_project: Path) -> None:
    """The issue's reproduction: the bundle builds (no Pulumi needed), then the plan
    needs the SDKs."""
    result = slml_without("pulumi,pulumi_aws", ["preview", "--provider", "aws"], aws_project)
    assert result.returncode == 2, result.stderr
    assert "pip install 'slml[aws]'" in result.stderr and "pulumi" in result.stderr
    assert "internal error" not in result.stderr and "please report" not in result.stderr


def test_a_missing_optional_package_anywhere_names_its_extra() -> None:
    try:
        import pulumi_gcp_not_installed  # noqa: F401
    except ImportError as exc:
        assert translate(exc) is None  # not one of ours: an slml bug, reported as one
    error = ModuleNotFoundError("No module named 'onnxruntime'", name="onnxruntime")
    mapped = translate(error)
    assert isinstance(mapped, ProviderUnavailable) and mapped.hint == "pip install 'slml[onnx]'"
    shared = translate(ModuleNotFoundError("x", name="pulumi"), provider="sagemaker")
    assert shared is not None and shared.hint == "pip install 'slml[aws]'"


def write_to_dev_full() -> None:
    with open("/dev/full", "w") as full:
        full.write("x" * 10)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_a_real_enospc_becomes_disk_full_with_free_space() -> None:
    with pytest.raises(OSError) as info:
        write_to_dev_full()
    assert info.value.errno == errno.ENOSPC
    mapped = translate(info.value)
    assert isinstance(mapped, DiskFull)
    assert "disk is full" in mapped.message and "free space: project" in mapped.message
    try:
        try:
            write_to_dev_full()
        except OSError as inner:
            raise RuntimeError("while writing the bundle") from inner
    except RuntimeError as outer:
        assert isinstance(translate(outer), DiskFull)  # found through the chain


def test_a_tools_enospc_in_a_packaging_error_gets_the_disk_hint() -> None:
    error = PackagingError("uv pip install failed:\n  error: No space left on device (os error 28)")
    assert "free some space" in (with_disk_hint(error).hint or "")
    assert with_disk_hint(PackagingError("other", hint="keep")).hint == "keep"


FULL_DISK_SCRIPT = """
set -e
mount -t tmpfs -o size=256k tmpfs "$0" || { echo "MOUNT-FAILED" >&2; exit 97; }
cd "$0"
head -c 400000 /dev/zero > fill 2>/dev/null || true
exec "$@"
"""


def test_a_full_disk_says_so_and_where(tmp_path: Path) -> None:
    """A real ENOSPC: the project lives on a 256 KB tmpfs that is already full, mounted
    in a private user+mount namespace (no root needed where user namespaces are on)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not installed: cannot make a small file system here")
    disk = tmp_path / "disk"
    disk.mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), "COLUMNS": "400"}
    code = "import sys; from slml.cli import main; main(sys.argv[1:])"
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", FULL_DISK_SCRIPT,
         str(disk), sys.executable, "-c", code, "init", "iris"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if result.returncode == 97 or "unshare:" in result.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()[:200]}")
    assert result.returncode == 2, result.stderr
    assert "the disk is full (no space left on device)" in result.stderr
    assert f"project {disk}/.slml: 0 B" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_help_shows_no_type_after_boolean_flags(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["deploy", "--help"], ["init", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        out = capsys.readouterr().out
        assert "<bool>" not in out and "--help" in out


def test_disk_full_names_the_file_and_its_free_space_when_the_os_says(tmp_path: Path) -> None:
    error = OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), str(tmp_path / "bundle.zip"))
    mapped = translate(error)
    assert isinstance(mapped, DiskFull) and "quota is exceeded" in mapped.message
    assert f"writing {tmp_path}/bundle.zip" in mapped.message
    assert f"file system of {tmp_path}:" in mapped.message
