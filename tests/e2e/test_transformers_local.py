"""A tiny transformers text-classification pipeline goes through `slml save DIR` (a
save_pretrained directory) → `slml deploy` (the real local provider: the bundle in its
own environment, torch from the local wheel directory) → `slml invoke`, over real HTTP;
then `slml build --provider aws` exports it to ONNX for a Lambda zip."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from cli_project import project_dir, run_slml

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
pytest.importorskip("torch")
pytest.importorskip("transformers")

import hf_tiny  # noqa: E402

__all__ = ["project_dir"]
WHEELS = Path("/opt/wheels")


def test_text_classification_pipeline_saves_deploys_and_answers(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if WHEELS.is_dir():  # the CPU torch wheel (package sources in slml.yaml: issue 13)
        monkeypatch.setenv("UV_FIND_LINKS", str(WHEELS))
    project = project_dir
    pipe = hf_tiny.pipeline("text-classification")
    pipe.save_pretrained(str(project / "pipeline"))
    want = pipe(hf_tiny.SAMPLE)
    (project / "sample.json").write_text(json.dumps({"instances": hf_tiny.SAMPLE}))
    saved = run_slml(project, "save", "pipeline", "--sample", "sample.json", "--out", "artifact")
    assert "(transformers)" in saved.stdout
    (project / "slml.yaml").write_text("name: tiny-hf\nmodel: artifact\nprovider: local\n")
    try:
        started = time.monotonic()
        run_slml(project, "deploy")
        deploy_s = time.monotonic() - started
        answer = json.loads(run_slml(project, "invoke", "--file", "sample.json", "--json").stdout)
        got = answer["predictions"]
        assert [g["label"] for g in got] == [w["label"] for w in want]
        assert all(abs(g["score"] - w["score"]) < 1e-5 for g, w in zip(got, want, strict=True))
        bad = run_slml(project, "invoke", '{"instances": [1]}', check=False)
        assert bad.returncode != 0 and "expected a string" in bad.stdout + bad.stderr
        size = sum(f.stat().st_size for f in (project / "artifact").rglob("*") if f.is_file())
        print(f"artifact {size / 1e6:.2f} MB; deploy (install + cold start) {deploy_s:.1f} s",
              os.environ.get("UV_FIND_LINKS"))
    finally:
        run_slml(project, "destroy")
    built = run_slml(project, "build", "--provider", "aws").stdout
    assert "exported to ONNX" in built and "labels equal, logits max abs diff" in built
    assert "delivery: image" not in built
