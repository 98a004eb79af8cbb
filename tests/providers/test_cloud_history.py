"""A cloud traffic shift (promote, rollback, guard) keeps the record's live set and
writes a history event, like local: under the fake engine (tests/providers/conftest.py),
so the real programs run under Pulumi's mocks."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from slml import api
from slml.providers.aws import AwsProvider
from slml.rollout import dropped, promoted
from tests.providers.conftest import MockedEngine
from tests.providers.test_aws import URL, context, fake_bundle


def _live(version: int, ref: str, percent: float = 100.0, role: str = "primary") -> dict:
    return {"version": version, "percent": percent, "role": role, "ref": ref}


def _canary_on_aws(tmp_path: Path, engine: MockedEngine) -> api.Session:
    """Version 1 deployed, then version 2 as a 10% canary (Lambda versions 11 and 12)."""
    (tmp_path / "model").mkdir()
    aws = AwsProvider(engine_factory=engine, cli_available=lambda: True)
    ctx = context(tmp_path)
    engine.outputs = {"url": URL, "version": "11", "traffic": [_live(1, "11")]}
    aws.deploy(ctx=ctx, bundle=fake_bundle(tmp_path))
    canary = replace(ctx, rollout=api.rollout_request(ctx, canary=10, shadow=False))
    engine.outputs = {"url": URL, "version": "12",
                      "traffic": [_live(1, "11", 90.0), _live(2, "12", 10.0, "canary")]}
    aws.deploy(ctx=canary, bundle=replace(fake_bundle(tmp_path), model_sha256="m2"))
    return api.Session(provider=aws, ctx=ctx)


def test_a_canary_deploy_records_both_versions(tmp_path: Path, mocked_engine) -> None:
    session = _canary_on_aws(tmp_path, mocked_engine)
    assert [(v.version, v.percent, v.role) for v in api._live(session)] == [
        (1, 90.0, "primary"), (2, 10.0, "canary")]  # fmt: skip


def test_promote_on_a_cloud_is_in_the_history_and_the_record(tmp_path, mocked_engine) -> None:
    session = _canary_on_aws(tmp_path, mocked_engine)
    mocked_engine.outputs = {"url": URL, "version": "12", "traffic": [_live(2, "12")]}
    api._shift(session, promoted(api._live(session)), "promote")
    alias = mocked_engine.resource("aws:lambda/alias:Alias")
    assert alias.inputs["function_version"] == "12"
    assert [(v.version, v.role) for v in api._live(session)] == [(2, "primary")]
    last = api.history(tmp_path)[-1]
    assert (last["event"], last["provider"], last["stage"]) == ("promote", "aws", "dev")
    assert last["traffic"] == [_live(2, "12")]


def test_rollback_of_a_cloud_canary_is_in_the_history(tmp_path, mocked_engine) -> None:
    session = _canary_on_aws(tmp_path, mocked_engine)
    mocked_engine.outputs = {"url": URL, "version": "11", "traffic": [_live(1, "11")]}
    api._shift(session, dropped(api._live(session)), "guard-rollback",
               figures={"error_rate": 0.2}, error="error rate 20% > 5%")
    assert mocked_engine.resource("aws:lambda/alias:Alias").inputs["function_version"] == "11"
    assert [(v.version, v.role) for v in api._live(session)] == [(1, "primary")]
    events = [e["event"] for e in api.history(tmp_path)]
    assert events == ["deploy", "deploy", "guard-rollback"]
    last = api.history(tmp_path)[-1]
    assert last["figures"] == {"error_rate": 0.2} and "20%" in last["error"]
