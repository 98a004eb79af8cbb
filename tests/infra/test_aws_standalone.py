"""The standalone project in infra/ runs the same program (under the offline plan)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

from slml.engine import offline_plan
from slml.providers.base import Bundle, SizeReport

ROOT = Path(__file__).parents[2]


def load_main():
    spec = importlib.util.spec_from_file_location("slml_infra_main", ROOT / "infra" / "__main__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pulumi_yaml_names_python_and_the_config_key():
    text = (ROOT / "infra" / "Pulumi.yaml").read_text()
    assert "runtime:" in text and "name: python" in text and "slml:config" in text


def test_main_builds_and_runs_the_providers_program(tmp_path, iris_artifact):
    shutil.copytree(iris_artifact, tmp_path / "artifacts" / "iris")
    (tmp_path / "slml.yaml").write_text(
        "name: iris\nmodel: artifacts/iris\nstage: prod\naws:\n  memory: 512\n"
    )
    built = []

    def build(provider, ctx):
        built.append(ctx.stage)
        for name in ("function.zip", "layer.zip"):
            (tmp_path / name).write_bytes(b"PK")
        return Bundle(
            provider="aws", path=tmp_path, lock_hash="l", model_sha256="m",
            python_version="3.12", platform="x86_64-manylinux_2_34",
            size=SizeReport(unzipped=1, parts={"layer_zipped": 1, "function_zipped": 1}),
            files={"zip": tmp_path / "function.zip", "layer": tmp_path / "layer.zip"},
        )  # fmt: skip

    main = load_main()
    plan = offline_plan(
        lambda: main.run(tmp_path / "slml.yaml", build=build), project="slml", stack="prod"
    )
    assert built == ["prod"]
    fn = next(r for r in plan if r.type == "aws:lambda/function:Function")
    assert fn.inputs["name"] == "iris-prod" and fn.inputs["memory_size"] == 512
    assert json.dumps(fn.inputs)  # plain data
