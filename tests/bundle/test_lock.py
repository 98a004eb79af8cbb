from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from slml.bundle.lock import (
    Target,
    lock_key,
    parse_pins,
    read_lock,
    requirement_name,
    resolve_lock,
    runtime_requirements,
)
from slml.errors import PackagingError

REQS = ["starlette>=0.37", "uvicorn>=0.29", "joblib==1.4.2"]


def test_runtime_requirements_and_extras() -> None:
    assert runtime_requirements()[:2] == ["uvicorn>=0.54,<0.55", "orjson>=3.9"]
    assert not any(r.startswith("starlette") for r in runtime_requirements())  # plain ASGI
    assert "mangum>=0.17" in runtime_requirements(["lambda"])
    assert "azure-functions>=1.20" in runtime_requirements(["azure"])
    with pytest.raises(ValueError, match="unknown runtime extra 'gcp'"):
        runtime_requirements(["gcp"])


def test_requirement_name_is_normalised() -> None:
    assert requirement_name("Scikit_Learn==1.5") == "scikit-learn"
    assert requirement_name("zope.interface >= 5") == "zope-interface"


def test_parse_pins_drops_comments_and_order() -> None:
    text = "b==2\n    # via a\nA==1  # note\n\n--index-url x\n"
    assert parse_pins(text) == ("a==1", "b==2")


def test_lock_key_ignores_order_and_spacing_but_not_target() -> None:
    here = Target("local", "3.11")
    assert lock_key(["a>=1", "b"], here) == lock_key(["b", "a >= 1"], here)
    assert lock_key(["a"], here) != lock_key(["a"], Target("local", "3.12"))
    linux = Target("aws", "3.11", "x86_64-manylinux_2_34")
    assert lock_key(["a"], here) != lock_key(["a"], linux)


def test_resolve_lock_pins_everything_and_caches(tmp_path: Path) -> None:
    target = Target.here()
    lock = resolve_lock(REQS, target=target, cache_dir=tmp_path)
    names = {requirement_name(p) for p in lock.pins}
    assert {"starlette", "uvicorn", "joblib", "anyio", "h11"} <= names
    assert all("==" in pin for pin in lock.pins)
    assert "joblib==1.4.2" in lock.pins
    assert not lock.reused and lock.path.parent == tmp_path / "locks"

    def no_uv(*args, **kwargs):  # the cached lock must not run uv at all
        raise AssertionError("uv was called for a cached lock")

    again = resolve_lock(list(reversed(REQS)), target=target, cache_dir=tmp_path, runner=no_uv)
    assert again.reused and again.hash == lock.hash and again.path == lock.path
    assert read_lock(lock.path).hash == lock.hash


def test_resolve_lock_for_a_platform_uses_binary_wheels(tmp_path: Path) -> None:
    seen: list[list[str]] = []

    def runner(command, **kwargs):
        seen.append(command)
        return subprocess.run(command, **kwargs)

    target = Target("aws", "3.12", "aarch64-manylinux_2_34")
    lock = resolve_lock(["joblib==1.4.2"], target=target, cache_dir=tmp_path, runner=runner)
    assert lock.pins == ("joblib==1.4.2",)
    args = seen[0]
    assert args[args.index("--python-platform") + 1] == "aarch64-manylinux_2_34"
    assert args[args.index("--only-binary") + 1] == ":all:"
    assert args[args.index("--python-version") + 1] == "3.12"


def test_unresolvable_requirement_is_named_with_a_hint(tmp_path: Path) -> None:
    bad = "joblib==0.0.999"
    with pytest.raises(PackagingError) as err:
        resolve_lock(["starlette>=0.37", bad], target=Target.here(), cache_dir=tmp_path)
    assert f"cannot resolve {bad} for local" in str(err.value)
    assert "spelling and version" in (err.value.hint or "")
    assert not list((tmp_path / "locks").glob("*.txt"))  # nothing cached on failure


def test_hash_covers_pins_not_comments(tmp_path: Path) -> None:
    a = tmp_path / "a.lock"
    b = tmp_path / "b.lock"
    a.write_text("x==1\n    # via y\ny==2\n")
    b.write_text("y==2\nx==1\n")
    assert read_lock(a).hash == read_lock(b).hash
    b.write_text("y==2\nx==1.1\n")
    assert read_lock(a).hash != read_lock(b).hash
    with pytest.raises(PackagingError, match="cannot read the lock file"):
        read_lock(tmp_path / "missing.lock")
