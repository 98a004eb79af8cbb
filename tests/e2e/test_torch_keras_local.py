"""A TorchScript file, a torch.export program and a Keras 3 .keras file (torch backend)
go through `slml save FILE` → `slml deploy` (the real local provider: the bundle in its
own environment, resolved with torch from find-links, never PyPI's CUDA build) →
`slml invoke`, and answer what the in-process model answers. Prints each one's
artifact size, bundle size and cold start (deploy start to healthy plus first answer)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_project import project_dir, run_slml

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is first imported
torch = pytest.importorskip("torch")
WHEELS = os.environ.get("PIP_FIND_LINKS", "/opt/wheels").split()[0]
if not list(Path(WHEELS).glob("torch-*.whl")):
    pytest.skip(f"no local torch wheel in {WHEELS} (set PIP_FIND_LINKS)", allow_module_level=True)

__all__ = ["project_dir"]
ROWS = np.random.default_rng(0).random((3, 4)).astype("float32")


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(x))


def _torch_files(project: Path) -> dict[str, Any]:
    torch.manual_seed(0)
    net = Net().eval()
    torch.jit.save(torch.jit.script(net), str(project / "net.pt"))
    x = torch.as_tensor(ROWS)
    batch = torch.export.Dim("batch")
    program = torch.export.export(net, (x,), dynamic_shapes={"x": {0: batch}})
    torch.export.save(program, str(project / "net.pt2"))
    with torch.no_grad():
        want = net(x).numpy()
    return {"net.pt": want, "net.pt2": want}


def _keras_file(project: Path) -> dict[str, Any]:
    import keras

    assert keras.backend.backend() == "torch"
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.save(str(project / "net.keras"))
    return {"net.keras": model.predict(ROWS, verbose=0)}


def _timed_deploy(project: Path) -> tuple[Any, float, float]:
    """(predictions, seconds to healthy, seconds to the first answer) of one deploy."""
    started = time.monotonic()
    run_slml(project, "deploy")
    healthy = time.monotonic()
    try:
        invoked = run_slml(project, "invoke", "--file", "rows.json", "--json")
        answered = time.monotonic()
    finally:
        run_slml(project, "destroy")
    return json.loads(invoked.stdout)["predictions"], healthy - started, answered - started


def _deploy_and_invoke(project: Path, file: str, config: str) -> tuple[Any, dict[str, float]]:
    run_slml(project, "save", file, "--out", "artifact", "--overwrite")
    (project / "slml.yaml").write_text(config)
    answer, _, first_answer = _timed_deploy(project)
    built = json.loads(run_slml(project, "build", "--json").stdout)
    again, healthy, answered = _timed_deploy(project)  # the environment is built: a cold start
    assert again == answer
    artifact = sum(p.stat().st_size for p in (project / "artifact").rglob("*") if p.is_file())
    figures = {
        "artifact_kb": round(artifact / 1e3, 1),
        "bundle_mb": round(built["size"]["unzipped"] / 1e6, 1),
        "first_deploy_to_answer_s": round(first_answer, 1),  # includes building the env
        "cold_start_to_healthy_s": round(healthy, 1),
        "cold_start_to_first_answer_s": round(answered, 1),
    }
    return answer, figures


CONFIGS = {  # torch found through $PIP_FIND_LINKS, and through slml.yaml's find_links
    "net.pt": "name: torchscript\nmodel: artifact\n",
    "net.pt2": f"name: exported\nmodel: artifact\npackages:\n  find_links: [{WHEELS}]\n",
    "net.keras": "name: keras\nmodel: artifact\n",
}


@pytest.mark.timeout(1200)  # the first deploy installs torch (~750 MB) into its env
@pytest.mark.parametrize("file", list(CONFIGS))
def test_torch_and_keras_files_deploy_locally_and_answer(project_dir: Path, file: str) -> None:
    project = project_dir
    expected = _keras_file(project) if file.endswith(".keras") else _torch_files(project)
    (project / "rows.json").write_text(json.dumps(ROWS.tolist()))
    answer, figures = _deploy_and_invoke(project, file, CONFIGS[file])
    assert np.allclose(answer, expected[file], atol=1e-5), file
    lock = (project / ".slml" / "builds" / "local" / "requirements.lock").read_text()
    assert "torch==2.13.0" in lock and "nvidia" not in lock
    if file.endswith(".keras"):
        manifest = json.loads((project / "artifact" / "slml-model.json").read_text())
        assert manifest["framework"]["backend"] == "torch"
        assert manifest["flavor_options"]["env"] == {"KERAS_BACKEND": "torch"}
    print(f"\nfigures {file}:", json.dumps(figures))
