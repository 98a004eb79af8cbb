"""The generated ``function_app.py`` and ``host.json``: golden files, and requests
through the generated module as the azure-functions library's own HttpRequest objects.

The module runs in a child interpreter (the runtime keeps one app per process), with
this checkout's slml and the dev environment's azure-functions; the package tests
(test_azure_package.py) repeat it with only the built package on sys.path.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from slml.bundle.azure import render_function_app, render_host_json, write_app_files

GOLDEN = Path(__file__).parents[1] / "templates" / "golden" / "azure"
DRIVER = Path(__file__).with_name("azure_driver.py")
REPO = Path(__file__).parents[2]


@pytest.mark.parametrize("auth", ["function", "none"])
def test_function_app_matches_golden(auth):
    golden = (GOLDEN / f"function_app.{auth}.py.golden").read_text()
    assert render_function_app(auth=auth, model_name="iris") == golden


def test_host_json_matches_golden_and_drops_the_api_prefix():
    text = render_host_json()
    assert text == (GOLDEN / "host.json.golden").read_text()
    host = json.loads(text)
    assert host["version"] == "2.0"
    assert host["extensions"]["http"]["routePrefix"] == ""
    assert host["extensionBundle"]["id"] == "Microsoft.Azure.Functions.ExtensionBundle"


def test_unknown_auth_is_refused():
    with pytest.raises(ValueError, match=r"azure\.auth"):
        render_function_app(auth="iam", model_name="iris")


def drive(package: Path, cases: list[dict], *extra_path: str, isolated: bool = False) -> dict:
    """Run the driver on ``package`` in a child interpreter and return its report."""
    flags = ["-I", "-S"] if isolated else []  # -S: not even the venv's site-packages
    cmd = [sys.executable, *flags, str(DRIVER), str(package), json.dumps(cases), *extra_path]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=package)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


IRIS_CASES = [
    {"method": "POST", "path": "/predict", "headers": {"content-type": "application/json"},
     "body": json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]})},
    {"method": "POST", "path": "/predict", "headers": {"content-type": "application/json"},
     "body": "{not json"},
    {"method": "POST", "path": "/predict", "headers": {"content-type": "application/json"},
     "body": json.dumps({"instances": [[1.0, 2.0]]})},
    {"method": "GET", "path": "/healthz"},
]  # fmt: skip


def check_iris_answers(report: dict) -> None:
    ok, bad_json, wrong_features, health = report["results"]
    assert ok["status"] == 200, ok
    assert json.loads(ok["body"])["predictions"] == [0, 2]
    for bad in (bad_json, wrong_features):
        assert 400 <= bad["status"] < 500, bad
        error = json.loads(bad["body"])["error"]
        assert error["code"] and error["message"] and error["request_id"]
    assert health["status"] == 200


@pytest.mark.parametrize(("auth", "level"), [("function", "FUNCTION"), ("none", "ANONYMOUS")])
def test_requests_pass_through_the_generated_function_app(tmp_path, iris_artifact, auth, level):
    package = tmp_path / "package"
    write_app_files(package, auth=auth, model_name="iris")
    shutil.copytree(iris_artifact, package / "model")
    report = drive(package, IRIS_CASES)
    assert report["module_file"] == str(package / "function_app.py")
    assert report["auth_level"] == level
    assert report["route"] == "/{*route}"
    binding = report["function_json"]["bindings"][0]
    assert binding["type"] == "httpTrigger" and binding["authLevel"] == level
    check_iris_answers(report)
