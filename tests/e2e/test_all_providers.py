"""One slml.yaml, five targets: switching `provider:` changes nothing else.

The iris example is built and previewed for every provider from the same file, through
the real `slml` console script. Without the Pulumi CLI or cloud credentials (as here),
the cloud previews are offline plans: the providers' Pulumi programs run under mocks."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SLML = str(Path(sys.executable).with_name("slml"))

# the component each cloud provider's program must create, and resources that matter
EXPECTED = {
    "aws": ("slml:aws:LambdaModel", {"aws:lambda/function:Function",
                                     "aws:apigatewayv2/api:Api"}),
    "sagemaker": ("slml:aws:SageMakerModel", {"aws:sagemaker/endpoint:Endpoint"}),
    "gcp": ("slml:gcp:CloudRunModel", {"gcp:cloudrunv2/service:Service"}),
    "azure": ("slml:azure:FunctionModel", {"azure-native:web:WebApp"}),
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("all-providers") / "iris"
    shutil.copytree(ROOT / "examples" / "iris", dest, ignore=shutil.ignore_patterns(
        "artifacts", ".slml"))
    subprocess.run([sys.executable, "train.py"], cwd=dest, check=True, capture_output=True,
                   timeout=300)
    return dest


def set_provider(project: Path, provider: str) -> str:
    """Rewrite only the `provider:` line; return the rest of the file for comparison."""
    path = project / "slml.yaml"
    text = path.read_text()
    new = re.sub(r"(?m)^provider: \w+", f"provider: {provider}", text, count=1)
    path.write_text(new)
    return re.sub(r"(?m)^provider: \w+.*$", "", new)


def run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SLML_CACHE_DIR": str(project.parent / "cache")}
    result = subprocess.run([SLML, *args], cwd=project, capture_output=True, text=True,
                            timeout=900, env=env)
    assert result.returncode == 0, f"slml {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.parametrize("provider", ["local", "aws", "sagemaker", "gcp", "azure"])
def test_build_and_preview_from_one_file(project: Path, provider: str) -> None:
    rest = set_provider(project, provider)
    assert rest == set_provider(project, "local")  # nothing but the provider line differs
    set_provider(project, provider)

    built = json.loads(run(project, "build", "--json").stdout)
    assert built["provider"] == provider
    assert Path(built["path"]).is_dir()

    plan = json.loads(run(project, "preview", "--json").stdout)
    assert plan["provider"] == provider and plan["stage"] == "dev"
    if provider == "local":
        assert plan["kind"] == "local" and plan["steps"] and plan["cost"] is None
        return
    cost = plan["cost"]  # the example's traffic: 1M requests/month
    assert cost["usage"]["requests_per_month"] == 1_000_000
    assert cost["total_usd"] == pytest.approx(sum(line["usd"] for line in cost["lines"]))
    assert plan["kind"] == "offline"
    types = {r["type"] for r in plan["resources"]}
    component, children = EXPECTED[provider]
    assert component in types, types
    assert children <= types, types

    human = run(project, "preview").stdout  # piped: plain rows, never wrapped in a name
    assert "Offline plan" in human and "not compared with any live state" in human
    assert "Estimated monthly cost" in human
    assert any(line.startswith("total\t") for line in human.splitlines()), human
    lines = human.splitlines()
    for name in types:
        assert any(name in line.split("\t") for line in lines), (name, human)
