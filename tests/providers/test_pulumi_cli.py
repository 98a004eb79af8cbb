"""The missing Pulumi CLI: the decision, the install call (no download: a fake install
or a CLI already in place), and the deploy path that uses it."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from slml.errors import ProviderUnavailable
from slml.providers import pulumi_cli
from slml.providers.base import NullReporter
from slml.providers.pulumi_cli import decide, ensure_cli, install_root
from tests.providers.test_pulumi_base import _provider, ctx  # noqa: F401

VERSION = pulumi_cli.pinned_version()


def fake_cli(root: Path, version: str = VERSION) -> Path:
    """A `pulumi` that answers `pulumi version` like the real one."""
    binary = root / "bin" / "pulumi"
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_text(f"#!/bin/sh\necho v{version}\n")
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)
    return binary


@pytest.mark.parametrize(
    ("on_path", "cached", "consent", "interactive", "expected"),
    [
        (True, False, None, False, "path"),
        (False, True, False, False, "cached"),  # already installed by slml: no question
        (False, False, True, False, "install"),
        (False, False, None, True, "ask"),
        (False, False, None, False, "decline"),  # a script with no consent: never install
        (False, False, False, True, "decline"),  # SLML_INSTALL_PULUMI=no wins over a prompt
    ],
)
def test_decide(on_path, cached, consent, interactive, expected):
    assert decide(on_path=on_path, cached=cached, consent=consent,
                  interactive=interactive) == expected  # fmt: skip


def test_consent_values():
    assert pulumi_cli.consent({"SLML_INSTALL_PULUMI": "yes"}) is True
    assert pulumi_cli.consent({"SLML_INSTALL_PULUMI": "0"}) is False
    assert pulumi_cli.consent({}) is None


def run(tmp_path: Path, env: dict[str, str], **kwargs: Any) -> tuple[bool, list[tuple]]:
    calls: list[tuple] = []

    def install(root: Path, version: str) -> None:
        calls.append((root, version))
        fake_cli(root, version)

    kwargs.setdefault("interactive", lambda: False)
    ok = ensure_cli(NullReporter(), cache=tmp_path, env=env, which=lambda _: None,
                    install=install, **kwargs)  # fmt: skip
    return ok, calls


def test_consent_installs_the_pinned_version_into_the_cache_and_puts_it_on_path(tmp_path):
    env = {"SLML_INSTALL_PULUMI": "yes", "PATH": "/usr/bin"}
    ok, calls = run(tmp_path, env)
    root = tmp_path / "pulumi" / VERSION
    assert ok and calls == [(root, VERSION)]
    assert env["PATH"] == f"{root / 'bin'}{os.pathsep}/usr/bin"


def test_no_consent_and_no_terminal_declines_without_installing(tmp_path):
    ok, calls = run(tmp_path, {"PATH": "/usr/bin"})
    assert not ok and not calls


def test_the_prompt_names_version_and_place_and_a_no_declines(tmp_path):
    asked: list[str] = []
    ok, calls = run(tmp_path, {}, interactive=lambda: True,
                    ask=lambda q: asked.append(q) or False)  # fmt: skip
    assert not ok and not calls
    assert VERSION in asked[0] and str(install_root(tmp_path, VERSION)) in asked[0]


def test_a_cli_slml_installed_before_is_used_without_asking(tmp_path):
    fake_cli(install_root(tmp_path, VERSION))
    env = {"PATH": "/usr/bin"}
    ok, calls = run(tmp_path, env, ask=lambda q: pytest.fail("asked"))
    assert ok and not calls and env["PATH"].startswith(str(tmp_path))


def test_a_failed_install_is_a_typed_error(tmp_path):
    def broken(root: Path, version: str) -> None:
        raise OSError("network is unreachable")

    with pytest.raises(ProviderUnavailable, match="network is unreachable") as info:
        ensure_cli(NullReporter(), cache=tmp_path, env={"SLML_INSTALL_PULUMI": "1"},
                   which=lambda _: None, interactive=lambda: False, install=broken)  # fmt: skip
    assert "pulumi.com/docs/install" in (info.value.hint or "")


def test_pulumi_command_install_finds_a_cli_already_in_its_root(tmp_path):
    """The real PulumiCommand.install, given slml's root: with a CLI there it returns
    it without downloading (what a second deploy on this machine does)."""
    root = install_root(tmp_path, VERSION)
    binary = fake_cli(root)
    command = pulumi_cli._install(root, VERSION)
    assert command.command == str(binary)
    assert str(command.version) == VERSION


def test_deploy_without_cli_installs_with_consent_then_uses_the_engine(
    ctx, tmp_path, monkeypatch  # noqa: F811
):
    monkeypatch.setenv("SLML_CACHE_DIR", str(tmp_path / "cache"))
    fake_cli(install_root(tmp_path / "cache", VERSION))  # as a finished install leaves it
    monkeypatch.setenv("PATH", os.environ["PATH"])  # restored after the test
    provider, made = _provider(cli=False)
    provider.deploy(ctx=ctx, bundle=provider.build(ctx=ctx))
    assert made and os.environ["PATH"].startswith(str(tmp_path / "cache"))


def test_deploy_without_cli_or_consent_says_how_to_allow_the_install(
    ctx, tmp_path, monkeypatch  # noqa: F811
):
    monkeypatch.setenv("SLML_CACHE_DIR", str(tmp_path / "empty"))
    monkeypatch.delenv("SLML_INSTALL_PULUMI", raising=False)
    provider, made = _provider(cli=False)
    with pytest.raises(ProviderUnavailable) as info:
        provider.deploy(ctx=ctx, bundle=provider.build(ctx=ctx))
    assert "SLML_INSTALL_PULUMI=yes" in (info.value.hint or "") and not made
