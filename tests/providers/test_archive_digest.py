"""Issue 11, D8: the rollback archive is keyed by the whole artifact's digest. Two
versions with the same model file and different manifests (here: requirements) are two
archives, and a rollback deploys the old manifest, not the newer one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slml.artifact.store import verified_manifest
from slml.config import parse_config
from slml.providers.base import Bundle, NullReporter, ProviderContext, SizeReport
from slml.providers.pulumi_base import PulumiProvider
from slml.runtime.manifest import MANIFEST_FILE, artifact_digest
from slml.state import ProjectState


class DigestProvider(PulumiProvider):
    """Builds like every real builder: the digest of the verified manifest."""

    name = "aws"

    def build(self, *, ctx: ProviderContext) -> Bundle:
        digest = artifact_digest(verified_manifest(ctx.config.model))
        return Bundle(
            provider="aws", path=ctx.project_dir, lock_hash="lock", model_sha256=digest,
            python_version="3.11", platform="x86_64-manylinux_2_34", size=SizeReport(unzipped=1),
        )  # fmt: skip

    def program(self, *, ctx: ProviderContext, bundle: Bundle):
        return lambda: None


class Engine:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def up(self, program, *, on_output=None) -> dict[str, Any]:
        return {"url": "https://example.invalid"}


def _requirements(artifact: Path, extra: str) -> None:
    manifest = json.loads((artifact / MANIFEST_FILE).read_text())
    manifest["requirements"].append(extra)
    (artifact / MANIFEST_FILE).write_text(json.dumps(manifest))


def test_same_model_file_new_manifest_is_a_new_archive_and_rolls_back_right(
    tmp_path: Path, iris_artifact: Path
) -> None:
    config = parse_config(f"name: iris\nmodel: {iris_artifact}\n", base_dir=tmp_path)
    ctx = ProviderContext(config=config, state=ProjectState(tmp_path), reporter=NullReporter())
    provider = DigestProvider(engine_factory=Engine, cli_available=lambda: True)
    _requirements(iris_artifact, "pandas==2.2.3")
    provider.deploy(ctx=ctx, bundle=provider.build(ctx=ctx))  # v1
    first = ctx.state.read_record("dev", "aws")
    _requirements(iris_artifact, "polars==1.0.0")  # same model.joblib, another manifest
    provider.deploy(ctx=ctx, bundle=provider.build(ctx=ctx))  # v2
    second = ctx.state.read_record("dev", "aws")
    assert first["model_sha256"] != second["model_sha256"]
    assert first["artifact"] != second["artifact"]

    provider.rollback(ctx=ctx)  # to v1
    back = ctx.state.read_record("dev", "aws")
    assert back["model_sha256"] == first["model_sha256"]
    rolled = json.loads((Path(back["artifact"]) / MANIFEST_FILE).read_text())
    assert "polars==1.0.0" not in rolled["requirements"]
