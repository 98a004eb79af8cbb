"""`slml metrics` and `slml capture pull` from the command line: the happy path on a
capture directory, and clear errors (exit 2, a hint) when there is nothing to read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import project, run  # noqa: F401

CONFIG = "name: iris\nmodel: model\n"


def write_project(root: Path, extra: str = "") -> None:
    (root / "model").mkdir(exist_ok=True)
    (root / "slml.yaml").write_text(CONFIG + extra)


def test_pull_without_capture_section_says_how_to_turn_it_on(project, capsys):  # noqa: F811
    write_project(project)
    code, _, err = run(["capture", "pull", "out.jsonl"], capsys)
    assert code == 2 and "captures nothing" in err and "capture:" in err


def test_pull_from_a_directory_sink(project, capsys):  # noqa: F811
    sink = project / "cap"
    sink.mkdir()
    line = {"request_id": "r1", "model": "iris", "version": "1", "latency_ms": 1.0,
            "time": "2026-12-01T10:00:00.000+00:00", "inputs": [1], "outputs": [2]}  # fmt: skip
    (sink / "capture-1.jsonl").write_text(json.dumps(line) + "\n")
    write_project(project, f"capture:\n  sink: {sink}\n")
    code, _, err = run(["capture", "pull", "--since", "2026-12-01T09:00:00Z", "o.jsonl"], capsys)
    assert code == 0 and "1 records" in err
    assert json.loads((project / "o.jsonl").read_text())["request_id"] == "r1"
    code, _, err = run(["capture", "pull", "--since", "soon", "o.jsonl"], capsys)
    assert code == 2 and "neither a duration nor a time" in err


def test_metrics_when_nothing_is_deployed(project, capsys):  # noqa: F811
    write_project(project)
    code, _, err = run(["metrics"], capsys)
    assert code == 2 and "nothing is deployed" in err and "slml deploy" in err


@pytest.mark.parametrize("provider", ["sagemaker"])
def test_metrics_on_a_cloud_target_with_nothing_deployed(project, capsys, provider):  # noqa: F811
    write_project(project)
    code, _, err = run(["metrics", "--provider", provider], capsys)
    assert code == 2 and "nothing is deployed" in err and "slml deploy" in err
