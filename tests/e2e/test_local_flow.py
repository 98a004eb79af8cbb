"""The whole local path as a user runs it, through the real `slml` console script and
real HTTP: train → deploy → invoke → redeploy v2 → a broken v3 leaves v2 serving →
destroy. The bundle runs in its own virtual environment, not the test's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SLML = str(Path(sys.executable).with_name("slml"))
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]]
SPECIES = ["setosa", "versicolor", "virginica"]  # what train.py's model predicts for ROWS

BROKEN_MODEL = '''
class Broken:
    def load(self, data_dir):
        raise RuntimeError("this model cannot load")

    def predict(self, inputs):
        return inputs
'''


def slml(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([SLML, *args], cwd=project, capture_output=True, text=True,
                            timeout=600, env=os.environ.copy())
    if check and result.returncode != 0:
        raise AssertionError(f"slml {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def train(project: Path, version: str) -> None:
    subprocess.run([sys.executable, "train.py", "--version", version], cwd=project,
                   check=True, capture_output=True, timeout=300)


@pytest.fixture
def project(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
            monkeypatch: pytest.MonkeyPatch):
    dest = tmp_path / "iris"
    dest.mkdir()
    for name in ("train.py", "slml.yaml", "sample.json", "sample.csv"):
        shutil.copy(ROOT / "examples" / "iris" / name, dest / name)
    # one dependency cache for the whole session: environments are built once
    monkeypatch.setenv("SLML_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "slml-cache"))
    yield dest
    slml(dest, "destroy", check=False)


def predict(url: str) -> dict:
    response = httpx.post(f"{url}/predict", json={"instances": ROWS}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_deploy_redeploy_broken_destroy(project: Path) -> None:
    train(project, "1")
    first = json.loads(slml(project, "deploy", "--json").stdout)
    assert first["version"] == 1 and first["url"].startswith("http://127.0.0.1:")
    body = predict(first["url"])
    assert body["predictions"] == SPECIES
    assert body["model"] == "iris" and body["version"] == "1"

    invoked = json.loads(slml(project, "invoke", "--file", "sample.json", "--json").stdout)
    assert invoked["predictions"] == SPECIES
    csv_invoked = json.loads(slml(project, "invoke", "--file", "sample.csv", "--json").stdout)
    assert csv_invoked["predictions"] == SPECIES

    # a new model version: same URL, the new version answers
    train(project, "2")
    second = json.loads(slml(project, "deploy", "--json").stdout)
    assert second["version"] == 2 and second["url"] == first["url"]
    assert predict(second["url"])["version"] == "2"

    # a model that cannot load: deploy fails with a message, v2 keeps serving
    _save_broken_model(project)
    failed = slml(project, "deploy", check=False)
    assert failed.returncode == 2, failed.stderr
    assert "error:" in failed.stderr and "Traceback" not in failed.stderr
    assert predict(second["url"])["version"] == "2"
    status = json.loads(slml(project, "status", "--json").stdout)
    assert status["state"] == "running" and status["version"] == 2

    listed = json.loads(slml(project, "list", "--json").stdout)
    assert [(r["provider"], r["version"]) for r in listed] == [("local", 2)]

    slml(project, "destroy")
    with pytest.raises(httpx.TransportError):
        httpx.post(f"{first['url']}/predict", json={"instances": ROWS}, timeout=5)
    status = json.loads(slml(project, "status", "--json").stdout)
    assert status["state"] == "not-deployed"


def _save_broken_model(project: Path) -> None:
    code = project / "broken_model.py"
    code.write_text(BROKEN_MODEL)
    script = (
        "import sys; sys.path.insert(0, '.'); import slml; from broken_model import Broken; "
        "slml.save_model(Broken(), 'artifacts/iris', name='iris', version='3', "
        "overwrite=True, flavor='python', check=False)"  # the save-time check would refuse it
    )
    subprocess.run([sys.executable, "-c", script], cwd=project, check=True, timeout=120)


def test_rollback_and_history(project: Path) -> None:
    train(project, "1")
    slml(project, "deploy")
    train(project, "2")
    url = json.loads(slml(project, "deploy", "--json").stdout)["url"]
    assert predict(url)["version"] == "2"
    rolled = json.loads(slml(project, "rollback", "--json").stdout)
    assert rolled["version"] == 3 and rolled["url"] == url
    assert predict(url)["version"] == "1"  # version 3 serves model version 1 again
    events = json.loads(slml(project, "history", "--json").stdout)
    assert [e["event"] for e in events][-3:] == ["deploy", "deploy", "deploy"]
    missing = slml(project, "rollback", "--to", "9", check=False)
    assert missing.returncode == 2 and "no local deployment of version 9" in missing.stderr
    assert "versions that can be deployed again: 1, 2" in missing.stderr
