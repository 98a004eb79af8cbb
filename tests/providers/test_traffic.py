"""Traffic plans shared by the cloud providers (slml/providers/traffic.py), and the
bundle a shift reruns (slml/providers/rollout_base.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from slml.errors import DeployError
from slml.providers import traffic as tr
from slml.providers.base import Bundle, SizeReport
from slml.providers.rollout_base import keep_bundle, load_kept_bundle
from slml.rollout import LiveVersion, RolloutRequest

PRIMARY = LiveVersion(3, 100.0, "primary", "3")


def test_replace_canary_and_shadow_plans() -> None:
    assert tr.planned(None, 4) == (LiveVersion(4, 100.0, "primary", tr.NEW),)
    assert tr.planned(RolloutRequest("canary", 10, (PRIMARY,)), 4) == (
        LiveVersion(3, 90.0, "primary", "3"), LiveVersion(4, 10.0, "canary", tr.NEW))
    assert tr.planned(RolloutRequest("shadow", live=(PRIMARY,)), 4) == (
        LiveVersion(3, 100.0, "primary", "3"), LiveVersion(4, 0.0, "shadow", tr.NEW))


def test_a_new_canary_replaces_the_old_one_beside_the_primary() -> None:
    live = (LiveVersion(3, 80.0, "primary", "3"), LiveVersion(4, 20.0, "canary", "4"))
    assert [v.version for v in tr.planned(RolloutRequest("canary", 5, live), 5)] == [3, 5]


def test_check_shift_refuses_bad_live_sets() -> None:
    tr.check_shift((PRIMARY,), max_answering=2)
    with pytest.raises(DeployError, match="exactly one primary"):
        tr.check_shift((LiveVersion(3, 100.0, "canary"),), max_answering=2)
    with pytest.raises(DeployError, match="add up to 110%"):
        tr.check_shift((PRIMARY, LiveVersion(4, 10.0, "canary")), max_answering=2)
    three = (LiveVersion(1, 50.0, "primary"), LiveVersion(2, 25.0, "canary"),
             LiveVersion(3, 25.0, "canary"))
    with pytest.raises(DeployError, match="at most 2"):
        tr.check_shift(three, max_answering=2)


def test_remember_keeps_the_newest_handles() -> None:
    known = {v: str(v) for v in range(1, 25)}
    kept = tr.remember(known, [{"version": 30, "percent": 100.0, "role": "primary",
                                "ref": "r30"}])
    assert len(kept) == tr.KEEP_VERSIONS and kept["30"] == "r30" and "1" not in kept


def test_fill_refs_names_the_versions_it_can_route_to() -> None:
    filled = tr.fill_refs((LiveVersion(3, 100.0, "primary"),), {3: "r3"}, "aws")
    assert filled[0].ref == "r3"
    with pytest.raises(DeployError, match=r"versions it can route to: 3\)"):
        tr.fill_refs((LiveVersion(9, 100.0, "primary"),), {3: "r3"}, "aws")


def test_the_kept_bundle_survives_a_rebuild(tmp_path: Path) -> None:
    build = tmp_path / "build"
    build.mkdir()
    (build / "function.zip").write_bytes(b"v1")
    bundle = Bundle(provider="aws", path=build, lock_hash="l", model_sha256="m",
                    python_version="3.12", platform="p", size=SizeReport(unzipped=2, zipped=2),
                    files={"zip": build / "function.zip", "ctx": build})
    keep_bundle(tmp_path / "kept", bundle)
    (build / "function.zip").unlink()
    (build / "function.zip").write_bytes(b"v2: a later build")
    kept = load_kept_bundle(tmp_path / "kept", "aws")
    assert kept.files["zip"].read_bytes() == b"v1" and kept.files["ctx"] == build
    assert (kept.lock_hash, kept.model_sha256, kept.size.zipped) == ("l", "m", 2)


def test_no_kept_bundle_is_a_deploy_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="not kept") as err:
        load_kept_bundle(tmp_path / "nothing", "aws")
    assert "slml deploy --provider aws" in (err.value.hint or "")
